"""Credentials an open stream re-checks (events knows nothing of who issued them).

Whoever authenticates a request (tasks' API-token middleware does, for bearer tokens) may
attach an async check with `credential_recheck_set`. `stream_response` calls it once per
EVENTS_HEARTBEAT_SECONDS and closes the stream as soon as it answers False, so a revoked
credential stops the streams it opened within one heartbeat. A session has no check: it
is read once, when the stream opens, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Recheck = Callable[[], Awaitable[bool]]

_ATTRIBUTE = "_events_credential_recheck"


def credential_recheck_set(request: Any, check: Recheck) -> None:
    setattr(request, _ATTRIBUTE, check)


def credential_recheck(request: Any) -> Recheck | None:
    check = getattr(request, _ATTRIBUTE, None)
    return check if callable(check) else None
