"""What a stream wants (`EventFilter`) and how a page renders it (`FragmentRenderer`):
shared by the hub, which matches, and the streams, which parse and frame."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

from events import types
from events.types import EventJSON


class FilterError(ValueError):
    """A bad filter parameter; the message is a one-line reason for a 400."""


def _topic_id(params: Mapping[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    # Ids are 64-bit: 18 digits at most, and int() of thousands of digits is refused.
    if not text.isascii() or not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise FilterError(f"{name} must be a positive integer id, got {str(raw)[:40]!r}")
    return int(text)


class LogQuery(TypedDict):
    """An EventFilter as the keyword arguments of events.api's reads."""

    types: tuple[str, ...]
    type_prefixes: tuple[str, ...]
    task_id: int | None
    execution_id: int | None


@dataclass(frozen=True)
class EventFilter:
    """Which events a stream wants: types (exact) or type prefixes, and topic ids."""

    types: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    task_id: int | None = None
    execution_id: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EventFilter:
        """From query parameters `type` (comma list, `step.*` wildcards), `task`, `execution`."""
        names: list[str] = []
        prefixes: list[str] = []
        raw_types = params.get("type") or ""
        for item in str(raw_types).split(","):
            name = item.strip()
            if not name:
                continue
            if name.endswith("*"):
                prefix = name[:-1]
                if not prefix or not any(t.startswith(prefix) for t in types.registered()):
                    raise FilterError(f"unknown event type pattern {name[:64]!r}")
                prefixes.append(prefix)
            elif name in types.registered():
                names.append(name)
            else:
                raise FilterError(
                    f"unknown event type {name[:64]!r}; known: {', '.join(types.registered())}"
                )
        return cls(
            types=tuple(dict.fromkeys(names)),
            prefixes=tuple(dict.fromkeys(prefixes)),
            task_id=_topic_id(params, "task"),
            execution_id=_topic_id(params, "execution"),
        )

    def query(self) -> LogQuery:
        """For events.api: `events_after(after_id, **event_filter.query())`."""
        return {
            "types": self.types,
            "type_prefixes": self.prefixes,
            "task_id": self.task_id,
            "execution_id": self.execution_id,
        }

    def matches(self, event: EventJSON) -> bool:
        if (self.types or self.prefixes) and not (
            event["type"] in self.types or event["type"].startswith(self.prefixes)
        ):
            return False
        if self.task_id is not None and event.get("task_id") != self.task_id:
            return False
        return not (
            self.execution_id is not None and event.get("execution_id") != self.execution_id
        )


@runtime_checkable
class FragmentRenderer(Protocol):
    name: str  # unique per renderer: the key of the per-process render cache

    def render(self, event: EventJSON) -> str | None:
        """HTML (out-of-band swaps) bringing the page to the current state of what the
        event touched; None sends nothing. Sync; may query the database."""
        ...

    def snapshot(self) -> str:
        """HTML that brings the page to the current state. Sync."""
        ...
