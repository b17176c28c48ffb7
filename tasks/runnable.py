"""Something became runnable in this process: the wake-up call from services to in-process
workers (inside `serve`), so a worker claims at once instead of at its next poll.

A leaf module, like `events.publish.add_local_listener`: services announce, the engine
listens, and neither imports the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Listener = Callable[[], None]
_listeners: set[Listener] = set()
_lock = threading.Lock()


def listen(listener: Listener) -> None:
    """Call `listener` (thread-safe and quick, e.g. `threading.Event.set`) on each announce."""
    with _lock:
        _listeners.add(listener)


def unlisten(listener: Listener) -> None:
    with _lock:
        _listeners.discard(listener)


def announce() -> None:
    """Wake every listener of this process (services call it on commit)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener()
