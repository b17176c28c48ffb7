"""Fragment renderers of the operations pages: workers and queue (with the charts), the
inbox, a task's history. Like tasks.web.renderers, each renders the CURRENT state of what an
event touched, so a replayed or duplicated event converges; the history's rows are the
events themselves, appended once each (the page drops a row it already has)."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from events.api import events_after
from events.types import EventJSON
from tasks import event_types as t
from tasks import ops, selectors
from tasks.models import Execution, Task
from tasks.states import Status
from tasks.web import charts, renderers
from tasks.web.templatetags import duration

WORKERS_TEMPLATE = "tasks/workers.html"
INBOX_TEMPLATE = "tasks/inbox.html"
HISTORY_TEMPLATE = "tasks/history.html"
_LOOKAHEAD = 200

# --- workers, queue and charts --------------------------------------------------------

WORKER_TYPES = (t.WORKER_STARTED, t.WORKER_STOPPED, t.WORKER_LOST)
WORKERS_PAGE_TYPES = (*WORKER_TYPES, t.EXECUTION_CREATED, t.EXECUTION_STATUS)
WORKERS_REGIONS = ("workers", "queue", "charts")
_WORKERS_REGIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    t.WORKER_STARTED: ("workers",),
    t.WORKER_STOPPED: ("workers",),
    t.WORKER_LOST: ("workers",),
    t.EXECUTION_CREATED: ("queue",),
    t.EXECUTION_STATUS: WORKERS_REGIONS,
}


def workers_context() -> dict[str, Any]:
    now = timezone.now()
    return {
        "now": now,
        "workers": ops.worker_rows(now),
        "queue": ops.queue_by_function(),
        "throughput": charts.throughput_chart(ops.finished_per_minute(now)),
        "durations": charts.durations_chart(ops.durations_by_function(now)),
    }


def workers_regions(regions: tuple[str, ...] = WORKERS_REGIONS) -> str:
    context = {**workers_context(), "oob": True}
    return "".join(render_to_string(f"{WORKERS_TEMPLATE}#{name}", context) for name in regions)


def _superseded(
    event: EventJSON,
    regions: tuple[str, ...],
    types: tuple[str, ...],
    by_type: dict[str, tuple[str, ...]],
    task_id: int | None = None,
) -> bool:
    """A later event re-renders at least the same regions: this one needs no render (a
    burst shows the present at once instead of replaying each step of the past)."""
    covered: set[str] = set()
    later = events_after(event["id"], types=list(types), task_id=task_id, limit=_LOOKAHEAD)
    for item in later:
        covered.update(by_type.get(item["type"], ()))
        if covered.issuperset(regions):
            return True
    return False


class WorkersRenderer:
    """The same for every viewer (the page is for staff and view_all holders only)."""

    name = "ops.workers"

    def render(self, event: EventJSON) -> str | None:
        regions = _WORKERS_REGIONS_BY_TYPE.get(event.get("type", ""))
        if not regions:
            return None
        if _superseded(event, regions, WORKERS_PAGE_TYPES, _WORKERS_REGIONS_BY_TYPE):
            return None
        return workers_regions(regions)

    def snapshot(self) -> str:
        return workers_regions()


WORKERS_RENDERER = WorkersRenderer()


# --- the inbox ------------------------------------------------------------------------

INBOX_TYPES = (t.EXECUTION_STATUS, t.EXECUTION_ANSWERED)


def _moves_inbox(event: EventJSON) -> bool:
    if event.get("type") == t.EXECUTION_ANSWERED:
        return True
    data = event.get("data") or {}
    return Status.WAITING_FOR_INPUT in (data.get("from"), data.get("to"))


def inbox_context(user: Any) -> dict[str, Any]:
    items = ops.inbox_items(user)
    return {"items": items, "shown_max": ops.INBOX_SHOWN}


def inbox_regions(user: Any) -> str:
    context = {**inbox_context(user), "oob": True}
    return render_to_string(f"{INBOX_TEMPLATE}#items", context)


class InboxRenderer:
    """One person's inbox (what they may answer): rendered per person."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.name = f"ops.inbox:u{user.pk}"

    def render(self, event: EventJSON) -> str | None:
        if not _moves_inbox(event):
            return None
        later = events_after(event["id"], types=list(INBOX_TYPES), limit=_LOOKAHEAD)
        if any(_moves_inbox(item) for item in later):
            return None  # a later event re-renders the whole inbox
        return inbox_regions(self.user)

    def snapshot(self) -> str:
        return inbox_regions(self.user)


# --- a task's history -----------------------------------------------------------------


def history_summary(event: EventJSON) -> str:
    """One line saying what an event records (plain text: the template escapes it)."""
    kind = event["type"]
    data = event.get("data") or {}
    if kind == t.TASK_CREATED:
        return f"created “{data.get('title', '')}”"
    if kind in (t.TASK_STATUS, t.EXECUTION_STATUS):
        line = f"{data.get('from', '?')} → {data.get('to', '?')}"
        if data.get("error"):
            line += f": {data['error']}"
        if data.get("prompt"):
            line += f": asks “{data['prompt']}”"
        return line
    if kind == t.EXECUTION_CREATED:
        return f"attempt {data.get('number', '?')} queued"
    if kind == t.EXECUTION_PROGRESS:
        total = data.get("total")
        done = f"{data.get('done')} of {total}" if total is not None else f"{data.get('done')}"
        message = data.get("message") or ""
        return f"{done}{' · ' + message if message else ''}"
    if kind == t.EXECUTION_LOG:
        return f"{str(data.get('level', 'info')).upper()} {data.get('message', '')}"
    if kind == t.EXECUTION_ANSWERED:
        return f"answered “{data.get('answer', '')}”"
    if kind.startswith("step."):
        line = f"step “{data.get('name', '')}” {data.get('status', '')}"
        if data.get("duration_ms") is not None:
            line += f" in {duration(data['duration_ms'])}"
        if data.get("error"):
            line += f": {data['error']}"
        return line
    return ""


def history_rows(task: Task, events: list[EventJSON]) -> list[dict[str, Any]]:
    """The history's rows: each event with who, when and what."""
    actors = ops.history_actors(task, events)
    numbers = dict(
        Execution.objects.filter(
            pk__in={e["execution_id"] for e in events if e.get("execution_id")}
        ).values_list("pk", "number")
    )
    rows = []
    for event in events:
        at = parse_datetime(event["at"])
        rows.append(
            {
                **event,
                "kind": event["type"].replace(".", "-"),
                "who": actors.get(event["id"], ""),
                "when": at,
                "at_iso": event["at"],
                "number": numbers.get(event.get("execution_id") or 0),
                "summary": history_summary(event),
            }
        )
    return rows


class HistoryRenderer:
    """The newest page of a task's history: each event appends its row."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.name = f"ops.history:{task_id}"

    def render(self, event: EventJSON) -> str | None:
        if event.get("task_id") != self.task_id:
            return None
        task = Task.objects.select_related("created_by").filter(pk=self.task_id).first()
        if task is None:
            return None
        context = {"task": task, "rows": history_rows(task, [event]), "oob": True}
        return render_to_string(f"{HISTORY_TEMPLATE}#append", context)

    def snapshot(self) -> str:
        task = Task.objects.select_related("created_by").filter(pk=self.task_id).first()
        if task is None:
            return ""
        page = ops.task_history(task)
        context = {
            "task": task,
            "rows": history_rows(task, page.events),
            "history": page,
            "oob": True,
        }
        return render_to_string(f"{HISTORY_TEMPLATE}#rows", context)


# --- the admin's change page of a task ------------------------------------------------

ADMIN_REGIONS = ("head", "progress", "steps")


class AdminTaskRenderer:
    """The task page's head, progress and steps partials for the admin's change page (the
    same partials and stream; no actions in the head: the admin has its own)."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.name = f"ops.admin-task:{task_id}"

    def _regions(self, regions: tuple[str, ...]) -> str:
        task = selectors.task_detail(self.task_id)
        if task is None:
            return ""
        context = {**renderers.task_detail_context(task), "oob": True, "admin": True}
        return "".join(
            render_to_string(f"{renderers.DETAIL_TEMPLATE}#{name}", context) for name in regions
        )

    def render(self, event: EventJSON) -> str | None:
        if event.get("task_id") != self.task_id:
            return None
        wanted = renderers.detail_regions_of(event.get("type", ""))
        regions = tuple(r for r in ADMIN_REGIONS if r in wanted)
        if not regions:
            return None
        return self._regions(regions) or None

    def snapshot(self) -> str:
        return self._regions(ADMIN_REGIONS)


def admin_task_renderer(task_id: int) -> AdminTaskRenderer:
    return AdminTaskRenderer(task_id)
