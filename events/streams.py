"""The reusable stream API: filters, fragment renderers and `stream_response`.

`GET /events/` is `stream_response` without a renderer (JSON frames). A page of the
dashboard passes a `FragmentRenderer`: each event is then rendered once per process by
the hub and sent to every subscriber of that renderer as an `event: fragment` frame.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from events import audience, metrics, sse, types
from events.api import events_after, events_count, last_event_id
from events.audience import Grant
from events.auth import Recheck, credential_recheck
from events.filters import EventFilter, FragmentRenderer
from events.hub import Hub, Subscriber, get_hub

RETRY_MILLISECONDS = 2000
CHUNK = 64 * 1024


def _resume_id(request: HttpRequest) -> tuple[bool, int | None]:
    """(asked, id): the Last-Event-ID header wins over the last_event_id parameter; a
    value that is not a whole number >= 0 is asked-for but unknown (None)."""
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        raw = request.GET.get("last_event_id")
    if raw is None:
        return False, None
    text = raw.strip()
    if text == "" and "Last-Event-ID" not in request.headers:
        return False, None
    if text.isascii() and text.isdigit() and len(text) < 19:
        return True, int(text)
    return True, None


def _replay_problem(
    resume: int, event_filter: EventFilter, cursor: int, grant: Grant
) -> str | None:
    """Why the events after `resume` cannot be replayed exactly, or None when they can."""
    # Up to the hub's cursor an id is a position this process gave out, even past the
    # log's last row: with every event pruned, a live stream starts after the id counter.
    if resume > max(last_event_id(), cursor):
        return "unknown id"
    oldest = events_after(0, limit=1)
    if oldest and resume + 1 < oldest[0]["id"]:
        return "older than the log"
    first = events_after(resume, limit=1)
    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    if first and datetime.fromisoformat(first[0]["at"]) < cutoff:
        return "older than the retention window"
    limit = settings.EVENTS_REPLAY_LIMIT
    if cursor - resume > limit:
        count = events_count(
            resume, up_to_id=cursor, cap=limit + 1, grant=grant, **event_filter.query()
        )
        if count > limit:
            return "replay window exceeded"
    return None


def _replay_problem_in_memory(
    hub: Hub, resume: int, event_filter: EventFilter, grant: Grant
) -> str | None:
    """`_replay_problem` for an id within the hub's recent events: no query."""
    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    return hub.recent.replay_problem(
        resume, hub.cursor, event_filter, grant, cutoff=cutoff, limit=settings.EVENTS_REPLAY_LIMIT
    )


def _text(status: int, reason: str) -> HttpResponse:
    return HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")


async def stream_response(
    request: HttpRequest,
    *,
    event_filter: EventFilter,
    renderer: FragmentRenderer | None = None,
    grant: Grant | None = None,
) -> HttpResponseBase:
    """An SSE response of the events matching `event_filter` (JSON, or fragments) that
    `grant` allows (default: what the registered policy grants the request's user)."""
    user = await request.auser()
    if not user.is_authenticated:
        return _text(401, "authentication required: log in first")
    if grant is None:
        grant = await sync_to_async(audience.grant_for)(user)
    hub = await get_hub()
    assert hub.slots is not None
    slot = await hub.slots.acquire(user.pk)
    if slot is None:
        cap = settings.EVENTS_MAX_STREAMS_PER_USER
        return _text(429, f"too many open streams: at most {cap} per user")
    try:
        asked, resume = _resume_id(request)
        await hub.resync_if_idle()
        reset_reason: str | None = None
        if asked and resume is None:
            reset_reason = "unknown id"
        elif resume is not None and hub.recent.covers(resume, hub.cursor):
            reset_reason = _replay_problem_in_memory(hub, resume, event_filter, grant)
        elif resume is not None:
            reset_reason = await sync_to_async(_replay_problem)(
                resume, event_filter, hub.cursor, grant
            )
        if reset_reason is not None:
            resume = None
    except BaseException:
        hub.slots.release(slot)
        raise
    sub = hub.subscribe(
        event_filter, after_id=resume, renderer=renderer, user_id=user.pk, grant=grant, slot=slot
    )
    body = _frames(
        hub,
        sub,
        # Read now: events reaching the subscriber before the body starts raise last_id.
        start=sub.last_id,
        reset_reason=reset_reason,
        snapshot_first=renderer is not None and resume is None,
        recheck=credential_recheck(request),
    )
    # If the server never starts the body (client gone at once), still free the slot.
    weakref.finalize(body, hub.unsubscribe, sub)
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _release_request_thread() -> None:
    """Give back the thread (and its database connection) Django's ASGI handler keeps
    for this request's sync work until the response ends.

    A stream lasts minutes: a thread per open stream cost ~16 KB and its idle SQLite
    connection ~160 KB (on PostgreSQL, a server backend per stream); bench/ measured
    ~240 KB per stream before, ~45 KB after. A later sync call in this request (a
    catch-up read, a snapshot) gets a new thread, released again before the next wait.
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is None or getattr(context, "_executor", None) is not None:
        return  # no per-request context, or one whose executor its owner manages
    executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if executor is None:
        return
    executor.submit(connections.close_all)  # in that thread: connections are per thread
    executor.shutdown(wait=False)


async def _snapshot(sub: Subscriber, event_id: int) -> str:
    assert sub.renderer is not None
    html = await sync_to_async(sub.renderer.snapshot)()
    return sse.fragment_frame(html, event_id=event_id)


def _reset(sub: Subscriber, reason: str, cursor: int) -> str:
    metrics.RESETS.labels(reason).inc()
    return sse.control_frame(
        types.RESET, {"reason": reason, "last_event_id": cursor}, event_id=cursor
    )


def _reached(hub: Hub, sub: Subscriber, sent: int) -> int:
    """The id a stream ending now gives its client to resume after: every matching event
    up to it was sent, none after it was.

    A subscriber on the live feed with nothing queued was offered every event up to the
    hub's cursor, matching or not, so that is its position (past its last event: the
    resume's replay check then counts only what came since). One with items queued but
    not sent, or reading the log (`behind`), is at the last item it sent.
    """
    if sub.behind or sub.queue:
        return sent
    # last_id exceeds the cursor when a resume id is ahead of this process's hub.
    return max(hub.cursor, sub.last_id)


def _delivered(commits: list[float]) -> None:
    metrics.EVENTS_DELIVERED.inc(len(commits))
    metrics.observe_latencies(time.time(), commits)


async def _frames(
    hub: Hub,
    sub: Subscriber,
    *,
    start: int,
    reset_reason: str | None,
    snapshot_first: bool,
    recheck: Recheck | None = None,
) -> AsyncIterator[str]:
    heartbeat = settings.EVENTS_HEARTBEAT_SECONDS
    started = time.monotonic()
    deadline = started + settings.EVENTS_STREAM_MAX_SECONDS
    # The id of the last item handed to the client (sent, or rendered to nothing): the
    # client has every matching event up to it. First, the id the stream starts after.
    sent = start
    # A credential that can be revoked (an API token) is re-checked once per heartbeat,
    # busy or idle: revoked, the stream closes within one heartbeat.
    next_check = started + heartbeat if recheck is not None else float("inf")
    try:
        # The first frame carries the start id, so that a client disconnected before any
        # event still reconnects with a resume point instead of "live from now".
        first = sse.retry_frame(RETRY_MILLISECONDS, event_id=start)
        if reset_reason is not None:
            first += _reset(sub, reset_reason, start)
        if snapshot_first:
            # The id of the snapshot is the last id read before it was made: events after
            # it reach the subscriber, and fragments converge, so nothing is lost.
            first += await _snapshot(sub, start)
        yield first
        next_beat = time.monotonic() + heartbeat
        while True:
            # A reset first, even at the deadline: `end` must not carry a position past
            # an event the stream missed (a late commit) without saying so.
            if sub.reset_reason is not None:
                reason, sub.reset_reason = sub.reset_reason, None
                sent = hub.cursor
                text = _reset(sub, reason, sent)
                if sub.renderer is not None:
                    text += await _snapshot(sub, sent)
                yield text
                continue
            now = time.monotonic()
            if now >= deadline:
                yield sse.control_frame(
                    types.END,
                    {"reason": "stream lifetime reached"},
                    event_id=_reached(hub, sub, sent),
                )
                return
            if recheck is not None and now >= next_check:
                if not await recheck():
                    return
                next_check = time.monotonic() + heartbeat
            _release_request_thread()
            wake_at = min(next_beat, next_check, deadline)
            items = await hub.next_items(sub, max(0.0, wake_at - now))
            if not items:
                if time.monotonic() >= next_beat:
                    yield sse.comment_frame("keepalive")
                    next_beat = time.monotonic() + heartbeat
                continue
            # Written in pieces of about CHUNK bytes: the server's send waits for the
            # client to drain each (uvicorn; daphne through events.asgi), so a stalled
            # client holds at most one piece in the server, not a whole batch.
            # Every frame stays its own SSE event with its own id:, only the writes are
            # fewer: all the items of one wake go out in as few sends as CHUNK allows.
            chunk: list[str] = []
            commits: list[float] = []
            size = 0
            for event, committed in items:
                sent = event["id"]
                frame: str | None
                if sub.renderer is None:
                    frame = hub.frame(event)
                else:
                    frame = await hub.render(sub.renderer, event)
                    if frame is None:
                        continue
                chunk.append(frame)
                commits.append(committed)
                size += len(frame)
                if size >= CHUNK:
                    _delivered(commits)
                    yield "".join(chunk)
                    chunk, commits, size = [], [], 0
            if chunk:
                _delivered(commits)
                yield "".join(chunk)
            next_beat = time.monotonic() + heartbeat
    finally:
        hub.unsubscribe(sub)
