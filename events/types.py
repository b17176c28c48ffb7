"""Event type names: the ones an app registers (AppConfig.ready), and the stream control
events; and `EventJSON`, the contract's JSON of one event. events owns no domain names:
a stream accepts whatever the emitting apps registered, so it could carry another app's
events unchanged."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class EventJSON(TypedDict):
    """One event as the contract shows it (an SSE `data:` line, the API's `events`)."""

    id: int
    type: str
    at: str  # ISO 8601 with its UTC offset
    task_id: int | None
    execution_id: int | None
    data: dict[str, Any]
    # Inside this process only (publish -> hub): who may receive it. Frames leave it out.
    audience: NotRequired[str]


# Stream control events: never stored, only framed into a stream.
END = "end"
RESET = "reset"

_registered: dict[str, None] = {}


def register(*names: str) -> None:
    """Make event types known to filters (`type=`); call from the emitting app's ready()."""
    for name in names:
        if not name or name in (END, RESET) or any(c.isspace() or c == "," for c in name):
            raise ValueError(f"not a usable event type name: {name!r}")
        _registered[name] = None


def registered() -> tuple[str, ...]:
    """Every registered type, in registration order."""
    return tuple(_registered)
