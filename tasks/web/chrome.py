"""The header of every page, live over the page's own stream: the inbox count, the banner
shown while work waits and no worker is alive, and the trigger of browser notifications.

A page's stream carries what the page shows plus the few event types that move the header
(`PageFilter`); `PageRenderer` wraps the page's own renderer and adds the header regions.
The page's own fragment does not depend on the viewer and is rendered once per event per
process (shared by every viewer, `_shared_render`); the header does (counts of what this
person may see and answer), so it is rendered per person, and only for the events that can
move it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.urls import reverse

from events.api import last_event_id
from events.audience import Grant
from events.filters import EventFilter, FragmentRenderer
from events.streams import stream_response
from events.types import EventJSON
from tasks import access, ops
from tasks import event_types as t
from tasks.models import Task
from tasks.states import Status

CHROME_TEMPLATE = "tasks/_chrome.html"
CHROME_TYPES = frozenset(
    {
        t.TASK_CREATED,
        t.TASK_STATUS,
        t.EXECUTION_STATUS,
        t.EXECUTION_ANSWERED,
        t.WORKER_STARTED,
        t.WORKER_STOPPED,
        t.WORKER_LOST,
    }
)
# A browser notification for these, on a task the person may act on.
NOTIFY_ON = frozenset({Status.WAITING_FOR_INPUT, Status.FAILED})


def chrome_moves(event: EventJSON) -> tuple[bool, bool]:
    """(counts, notify): does `event` move the header's counts or banner, and might it
    notify someone?"""
    kind = event.get("type")
    data = event.get("data") or {}
    ends = {data.get("from"), data.get("to")}
    if kind in (t.WORKER_STARTED, t.WORKER_STOPPED, t.WORKER_LOST, t.TASK_CREATED):
        return True, False
    if kind == t.EXECUTION_ANSWERED:
        return True, False
    if kind == t.TASK_STATUS:
        return Status.PENDING in ends, False
    if kind == t.EXECUTION_STATUS:
        return Status.WAITING_FOR_INPUT in ends, data.get("to") in NOTIFY_ON
    return False, False


@dataclass(frozen=True)
class PageFilter(EventFilter):
    """What a page's stream carries: what `page` matches, plus the header's event types.

    Its own type/topic fields stay empty, so the hub treats it as a wide subscriber and a
    catch-up read brings every event; PageRenderer renders only what `page` matches."""

    page: EventFilter | None = None

    def matches(self, event: EventJSON) -> bool:
        if event.get("type") in CHROME_TYPES:
            return True
        return self.page is not None and self.page.matches(event)


def chrome_context(user: Any) -> dict[str, Any]:
    return {"chrome": ops.chrome_for(user), "user": user}


def chrome_regions(user: Any) -> str:
    """The header's count and banner at their current state, as out-of-band swaps."""
    context = {**chrome_context(user), "oob": True}
    return "".join(
        render_to_string(f"{CHROME_TEMPLATE}#{name}", context) for name in ("inbox_count", "banner")
    )


def notify_region(user: Any, event: EventJSON) -> str:
    """The notification trigger of `event` for `user`, or "" when it is not theirs to act on."""
    task_id = event.get("task_id")
    if not isinstance(task_id, int):
        return ""
    task = Task.objects.select_related("latest_execution").filter(pk=task_id).first()
    if task is None or not (access.task_visible(user, task) and access.task_actionable(user, task)):
        return ""
    to = (event.get("data") or {}).get("to")
    context = {
        "notice": {
            "id": event["id"],
            "kind": to,
            "title": (
                f"#{task.pk} waits for your answer"
                if to == Status.WAITING_FOR_INPUT
                else f"#{task.pk} failed"
            ),
            "body": task.title,
            "url": reverse("task_detail", args=[task.pk]),
        },
        "oob": True,
    }
    return render_to_string(f"{CHROME_TEMPLATE}#notify", context)


# --- whose header an event can move ----------------------------------------------------
# The task's audience (its creator and group, tasks.access.task_audience) is read once per
# event and shared by every viewer; each viewer's grant is matched against it without a
# query, so a person's header is re-rendered for events of tasks they can see only, not
# for every transition of every task.

_AUDIENCES: OrderedDict[int, str | None] = OrderedDict()
_AUDIENCES_MAX = 1024
_audience_lock = threading.Lock()


def _event_audience(event: EventJSON) -> str | None:
    """The audience of the task `event` is about (None: no such task any more)."""
    key = int(event["id"])
    with _audience_lock:
        if key in _AUDIENCES:
            return _AUDIENCES[key]
    task_id = event["task_id"]
    task = (
        Task.objects.filter(pk=task_id).only("created_by", "group").first()
        if task_id is not None
        else None
    )
    audience = access.task_audience(task) if task is not None else None
    with _audience_lock:
        _AUDIENCES[key] = audience
        while len(_AUDIENCES) > _AUDIENCES_MAX:
            _AUDIENCES.popitem(last=False)
    return audience


# --- the page's own fragments, shared by every viewer -----------------------------------

_SHARED: OrderedDict[tuple[str, int], str | None] = OrderedDict()
_SHARED_MAX = 1024
_shared_lock = threading.Lock()


def _shared_render(renderer: FragmentRenderer, event: EventJSON) -> str | None:
    key = (renderer.name, int(event["id"]))
    with _shared_lock:
        if key in _SHARED:
            return _SHARED[key]
    html = renderer.render(event)
    with _shared_lock:
        _SHARED[key] = html
        while len(_SHARED) > _SHARED_MAX:
            _SHARED.popitem(last=False)
    return html


class PageRenderer:
    """A page's renderer (or none: a page with only the header live) plus the header of
    one person."""

    def __init__(self, inner: FragmentRenderer | None, page: EventFilter | None, user: Any) -> None:
        self.inner = inner
        self.page = page
        self.user = user
        self.name = f"{inner.name if inner else 'chrome'}|u{user.pk}"
        self._grant: Grant | None = None

    def _concerns_viewer(self, event: EventJSON) -> bool:
        """Can `event` move this person's header? Worker events move everyone's banner;
        a task's events only the header of someone who can see the task."""
        if not isinstance(event.get("task_id"), int):
            return True
        if self._grant is None:
            self._grant = access.event_grant(self.user)
        if self._grant.everything:
            return True
        audience = _event_audience(event)
        return audience is not None and self._grant.allows(audience)

    def render(self, event: EventJSON) -> str | None:
        parts: list[str] = []
        if self.inner is not None and (self.page is None or self.page.matches(event)):
            html = _shared_render(self.inner, event)
            if html:
                parts.append(html)
        counts, notify = chrome_moves(event)
        if (counts or notify) and not self._concerns_viewer(event):
            counts = notify = False
        if counts:
            parts.append(chrome_regions(self.user))
        if notify:
            parts.append(notify_region(self.user, event))
        return "".join(parts) or None

    def snapshot(self) -> str:
        inner = self.inner.snapshot() if self.inner is not None else ""
        return inner + chrome_regions(self.user)


async def page_stream(
    request: HttpRequest,
    *,
    event_filter: EventFilter | None = None,
    renderer: FragmentRenderer | None = None,
    grant: Grant | None = None,
) -> HttpResponseBase:
    """The page's one stream: its own fragments and the header's, of what `grant` allows
    (default: what tasks.access grants the user), and the events that move the banner."""
    user = await request.auser()
    if not user.is_authenticated:  # stream_response answers 401
        return await stream_response(request, event_filter=EventFilter())
    if grant is None:
        grant = await sync_to_async(access.event_grant)(user)
    return await stream_response(
        request,
        event_filter=PageFilter(page=event_filter),
        renderer=PageRenderer(renderer, event_filter, user),
        grant=access.page_grant(grant),
    )


class HeaderState:
    """The header of a full page (the context processor's `chrome`): read on first use,
    with the id of the log's end read first, for a page whose only stream is the header's."""

    def __init__(self, user: Any) -> None:
        self.user = user

    @cached_property
    def since(self) -> int:
        return last_event_id()

    @cached_property
    def state(self) -> ops.Chrome:
        _ = self.since  # before the counts: what happens meanwhile reaches the stream
        return ops.chrome_for(self.user)

    @property
    def inbox_count(self) -> int:
        return self.state.inbox_count

    @property
    def inbox_capped(self) -> bool:
        return self.state.inbox_capped

    @property
    def pending(self) -> int:
        return self.state.pending

    @property
    def pending_capped(self) -> bool:
        return self.state.pending_capped

    @property
    def banner(self) -> bool:
        return self.state.banner

    @property
    def stream_url(self) -> str:
        _ = self.state
        return f"{reverse('chrome_stream')}?{urlencode({'last_event_id': self.since})}"

    @property
    def workers_visible(self) -> bool:
        return access.workers_visible(self.user)


def header(request: HttpRequest) -> dict[str, Any]:
    """Context processor: `chrome` on every page of a logged-in person."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"chrome": HeaderState(user)}
