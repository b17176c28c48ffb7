"""Server-Sent Events framing. Nothing a user typed can end a frame or add a field."""

import json
import re
from typing import Any

from events.types import EventJSON

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")
# What the hub knows of an event but a client is not told (who may receive it).
_PRIVATE_KEYS = frozenset({"audience"})


def _json(value: object) -> str:
    # json.dumps escapes CR, LF and NUL but, with ensure_ascii=False, not U+2028/U+2029,
    # which some line readers (str.splitlines, old JavaScript) treat as line breaks.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    # A lone surrogate cannot be encoded as UTF-8 (the whole stream would fail): keep it
    # as its JSON escape, which a JSON reader turns back into the same string.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _field_value(text: str) -> str:
    """A single-line value for `event:` or `id:` (never carries user text in practice)."""
    return _LINE_BREAK.sub(" ", text).replace("\0", "")


def retry_frame(milliseconds: int, *, event_id: int | None = None) -> str:
    """The reconnection delay; with `event_id`, also the id a client resends on its next
    connection (a WHATWG EventSource takes the `id:` of a frame that has no data)."""
    head = f"retry: {int(milliseconds)}\n"
    tail = f"id: {int(event_id)}\n" if event_id is not None else ""
    return f"{head}{tail}\n"


def comment_frame(text: str = "keepalive") -> str:
    return f": {_field_value(text)}\n\n"


def event_frame(event: EventJSON) -> str:
    """One stored event as `id:`, `event:` (its type) and `data:` (its contract JSON)."""
    public = {k: v for k, v in event.items() if k not in _PRIVATE_KEYS}
    return (
        f"id: {int(event['id'])}\nevent: {_field_value(event['type'])}\ndata: {_json(public)}\n\n"
    )


def control_frame(name: str, data: dict[str, Any], *, event_id: int | None = None) -> str:
    """A stream control event (`end`, `reset`), never stored in the log."""
    head = f"id: {int(event_id)}\n" if event_id is not None else ""
    return f"{head}event: {_field_value(name)}\ndata: {_json(data)}\n\n"


def fragment_frame(html: str, *, event_id: int | None) -> str:
    """HTML split over `data:` lines; the browser joins them back with LF.

    U+2028/U+2029 and NUL become character references so that no reader splits or
    truncates the frame; in HTML text and attributes they mean the same characters.
    """
    html = html.replace("\u2028", "&#8232;").replace("\u2029", "&#8233;").replace("\0", "&#65533;")
    html = _SURROGATE.sub("&#65533;", html)
    head = f"id: {int(event_id)}\n" if event_id is not None else ""
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(html))
    return f"{head}event: fragment\n{lines}\n"
