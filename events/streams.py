"""The reusable stream API: filters, fragment renderers and `stream_response`.

`GET /events/` is `stream_response` without a renderer (JSON frames). A page of the
dashboard passes a `FragmentRenderer`: each event is then rendered once per process by
the hub and sent to every subscriber of that renderer as an `event: fragment` frame.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from events import metrics, sse, types
from events.hub import Hub, Subscriber, get_hub
from events.models import Event

RETRY_MILLISECONDS = 2000
CHUNK = 64 * 1024


class FilterError(ValueError):
    """A bad filter parameter; the message is a one-line reason for a 400."""


def _topic_id(params: Mapping, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise FilterError(f"{name} must be a positive integer id, got {str(raw)[:40]!r}")
    return int(text)


@dataclass(frozen=True)
class EventFilter:
    """Which events a stream wants: types (exact) or type prefixes, and topic ids."""

    types: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    task_id: int | None = None
    execution_id: int | None = None

    @classmethod
    def from_params(cls, params: Mapping) -> EventFilter:
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
                if not prefix or not any(t.startswith(prefix) for t in types.DOMAIN_TYPES):
                    raise FilterError(f"unknown event type pattern {name[:64]!r}")
                prefixes.append(prefix)
            elif name in types.DOMAIN_TYPES:
                names.append(name)
            else:
                raise FilterError(
                    f"unknown event type {name[:64]!r}; known: {', '.join(types.DOMAIN_TYPES)}"
                )
        return cls(
            types=tuple(dict.fromkeys(names)),
            prefixes=tuple(dict.fromkeys(prefixes)),
            task_id=_topic_id(params, "task"),
            execution_id=_topic_id(params, "execution"),
        )

    def matches(self, event: dict) -> bool:
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

    def render(self, event: dict) -> str | None:
        """HTML (out-of-band swaps) bringing the page to the current state of what the
        event touched; None sends nothing. Sync; may query the database."""
        ...

    def snapshot(self, params: dict) -> str:
        """HTML that brings the page to the current state. Sync."""
        ...


def _resume_id(request) -> tuple[bool, int | None]:
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


def _replay_problem(resume: int, event_filter: EventFilter, cursor: int) -> str | None:
    """Why the events after `resume` cannot be replayed exactly, or None when they can."""
    latest = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if resume > latest:
        return "unknown id"
    first = Event.objects.filter(id__gt=resume).order_by("id").values_list("id", "at").first()
    oldest = Event.objects.order_by("id").values_list("id", flat=True).first()
    if oldest is not None and resume + 1 < oldest:
        return "older than the log"
    cutoff = timezone.now() - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    if first is not None and first[1] < cutoff:
        return "older than the retention window"
    limit = settings.EVENTS_REPLAY_LIMIT
    if cursor - resume > limit:
        qs = Event.objects.filter(id__gt=resume, id__lte=cursor)
        if event_filter.types or event_filter.prefixes:
            from django.db.models import Q

            match = Q(type__in=event_filter.types)
            for prefix in event_filter.prefixes:
                match |= Q(type__startswith=prefix)
            qs = qs.filter(match)
        if event_filter.task_id is not None:
            qs = qs.filter(task_id=event_filter.task_id)
        if event_filter.execution_id is not None:
            qs = qs.filter(execution_id=event_filter.execution_id)
        if qs.order_by("id")[: limit + 1].count() > limit:
            return "replay window exceeded"
    return None


def _text(status: int, reason: str) -> HttpResponse:
    return HttpResponse(f"{reason}\n", status=status, content_type="text/plain; charset=utf-8")


async def stream_response(
    request, *, event_filter: EventFilter, renderer: FragmentRenderer | None = None
) -> HttpResponseBase:
    """An SSE response of the events matching `event_filter` (JSON, or fragments)."""
    user = await request.auser()
    if not user.is_authenticated:
        return _text(401, "authentication required: log in first")
    hub = await get_hub()
    cap = settings.EVENTS_MAX_STREAMS_PER_USER
    too_many = _text(429, f"too many open streams: at most {cap} per user")
    if hub.streams_of(user.pk) >= cap:
        return too_many
    asked, resume = _resume_id(request)
    await hub.resync_if_idle()
    reset_reason: str | None = None
    if asked and resume is None:
        reset_reason = "unknown id"
    elif resume is not None:
        reset_reason = await sync_to_async(_replay_problem)(resume, event_filter, hub.cursor)
    if reset_reason is not None:
        resume = None
    if hub.streams_of(user.pk) >= cap:  # again: others may have opened during the awaits
        return too_many
    sub = hub.subscribe(event_filter, after_id=resume, renderer=renderer, user_id=user.pk)
    body = _frames(
        hub,
        sub,
        reset_reason=reset_reason,
        snapshot_first=renderer is not None and resume is None,
        params={k: request.GET.get(k) for k in request.GET},
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


async def _snapshot(sub: Subscriber, params: dict, event_id: int) -> str:
    assert sub.renderer is not None
    html = await sync_to_async(sub.renderer.snapshot)(params)
    return sse.fragment_frame(html, event_id=event_id)


def _reset(sub: Subscriber, reason: str, cursor: int) -> str:
    metrics.RESETS.labels(reason).inc()
    return sse.control_frame(
        types.RESET, {"reason": reason, "last_event_id": cursor}, event_id=cursor
    )


async def _frames(
    hub: Hub, sub: Subscriber, *, reset_reason: str | None, snapshot_first: bool, params: dict
) -> AsyncIterator[str]:
    heartbeat = settings.EVENTS_HEARTBEAT_SECONDS
    started = time.monotonic()
    deadline = started + settings.EVENTS_STREAM_MAX_SECONDS
    try:
        first = sse.retry_frame(RETRY_MILLISECONDS)
        if reset_reason is not None:
            first += _reset(sub, reset_reason, sub.last_id)
        if snapshot_first:
            # The id of the snapshot is the last id read before it was made: events after
            # it reach the subscriber, and fragments converge, so nothing is lost.
            first += await _snapshot(sub, params, sub.last_id)
        yield first
        next_beat = time.monotonic() + heartbeat
        while True:
            now = time.monotonic()
            if now >= deadline:
                yield sse.control_frame(types.END, {"reason": "stream lifetime reached"})
                return
            if sub.reset_reason is not None:
                reason, sub.reset_reason = sub.reset_reason, None
                chunk = _reset(sub, reason, hub.cursor)
                if sub.renderer is not None:
                    chunk += await _snapshot(sub, params, hub.cursor)
                yield chunk
                continue
            _release_request_thread()
            items = await hub.next_items(sub, max(0.0, min(next_beat, deadline) - now))
            if not items:
                if time.monotonic() >= next_beat:
                    yield sse.comment_frame("keepalive")
                    next_beat = time.monotonic() + heartbeat
                continue
            # Written in pieces of about CHUNK bytes: the server's send waits for the
            # client to drain each (uvicorn; daphne through events.asgi), so a stalled
            # client holds at most one piece in the server, not a whole batch.
            chunk: list[str] = []
            size = 0
            for event, committed in items:
                if sub.renderer is None:
                    frame = hub.frame(event)
                else:
                    frame = await hub.render(sub.renderer, event)
                    if frame is None:
                        continue
                chunk.append(frame)
                size += len(frame)
                metrics.DELIVERY_LATENCY.observe(max(0.0, time.time() - committed))
                if size >= CHUNK:
                    metrics.EVENTS_DELIVERED.inc(len(chunk))
                    yield "".join(chunk)
                    chunk, size = [], 0
            if chunk:
                metrics.EVENTS_DELIVERED.inc(len(chunk))
                yield "".join(chunk)
            next_beat = time.monotonic() + heartbeat
    finally:
        hub.unsubscribe(sub)
