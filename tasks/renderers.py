"""Fragment renderers: the dashboard's live regions as out-of-band swaps for the stream.

A renderer renders the CURRENT state of what an event touched, read from the database,
never the event's own payload: a replayed or duplicated event converges on the truth
instead of going back in time. Renders never depend on the viewer (the hub shares one
rendering among all subscribers), so the templates they use see no request or user.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any

from django.template.loader import render_to_string

from events import types as t
from events.models import Event
from tasks import selectors
from tasks.forms import AnswerForm
from tasks.models import Task
from tasks.selectors import TaskFilters
from tasks.states import ACTIVE, Status

RETRYABLE = frozenset({Status.FAILED, Status.CANCELLED})

# --- the task list -----------------------------------------------------------------

LIST_EVENT_TYPES = (
    t.TASK_CREATED,
    t.TASK_STATUS,
    t.EXECUTION_CREATED,
    t.EXECUTION_PROGRESS,
    t.STEP_STARTED,
    t.STEP_COMPLETED,
    t.STEP_FAILED,
)
# Events that can add, remove or reorder rows or move counts: the whole page region.
_LIST_PAGE_TYPES = frozenset({t.TASK_CREATED, t.TASK_STATUS, t.EXECUTION_CREATED})

# Context of a shared render: out-of-band swaps. The templates leave the per-viewer CSRF
# token out of out-of-band HTML: a form in a fragment posts through htmx, which sends
# the page's own token from <body hx-headers>.
_SHARED = {"oob": True}

LIST_TEMPLATE = "tasks/task_list.html"
DETAIL_TEMPLATE = "tasks/task_detail.html"


def task_list_context(filters: TaskFilters) -> dict[str, Any]:
    counts = selectors.task_status_counts(filters)
    return {
        "filters": filters,
        "page": selectors.task_page(filters),
        "counts": counts,
        "counts_total": sum(c.count for c in counts),
        "counts_capped": any(c.capped for c in counts),
        "statuses": Status.choices,
    }


def task_list_regions(filters: TaskFilters) -> str:
    """Rows, counts and pager of one filtered page, as out-of-band swaps."""
    context = {**task_list_context(filters), **_SHARED}
    return "".join(
        render_to_string(f"{LIST_TEMPLATE}#{name}", context) for name in ("rows", "counts", "pager")
    )


class TaskListRenderer:
    """The list page for one set of filters; subscribers with the same filters share it."""

    def __init__(self, filters: TaskFilters) -> None:
        self.filters = filters
        query = "&".join(f"{k}={v}" for k, v in sorted(filters.query().items()))
        self.name = f"tasks.list?{query}"

    def render(self, event: dict) -> str | None:
        if _list_event_superseded(event):
            return None
        if event.get("type") in _LIST_PAGE_TYPES:
            return task_list_regions(self.filters)
        task_id = event.get("task_id")
        # Only a row the page shows: a swap with no target is an error in the browser.
        if task_id is None or task_id not in selectors.task_page_ids(self.filters):
            return None
        task = selectors.task_row(task_id)
        if task is None:
            return None
        return render_to_string(f"{LIST_TEMPLATE}#row", {"task": task, **_SHARED})

    def snapshot(self, params: dict) -> str:
        return task_list_regions(self.filters)


# Renders show current state, so an event followed in the log by one that re-renders
# at least the same regions needs no render of its own: under a burst (or a slow
# machine) the page skips to the present instead of replaying every step of the past.
# The later event reaches the same subscribers (same filter), so nothing is lost.
_LOOKAHEAD = 200


def _list_event_superseded(event: dict) -> bool:
    later = Event.objects.filter(id__gt=event["id"], type__in=LIST_EVENT_TYPES)
    page_wide = event.get("type") in _LIST_PAGE_TYPES
    for type_, task_id in later.order_by("id").values_list("type", "task_id")[:_LOOKAHEAD]:
        if type_ in _LIST_PAGE_TYPES or (not page_wide and task_id == event.get("task_id")):
            return True
    return False


_LIST_RENDERERS: OrderedDict[str, TaskListRenderer] = OrderedDict()
_LIST_RENDERERS_MAX = 256
_lock = Lock()


def task_list_renderer(filters: TaskFilters) -> TaskListRenderer:
    """One renderer per distinct filters (a bounded cache), so the hub can share renders."""
    renderer = TaskListRenderer(filters)
    with _lock:
        found = _LIST_RENDERERS.get(renderer.name)
        if found is not None:
            _LIST_RENDERERS.move_to_end(renderer.name)
            return found
        _LIST_RENDERERS[renderer.name] = renderer
        while len(_LIST_RENDERERS) > _LIST_RENDERERS_MAX:
            _LIST_RENDERERS.popitem(last=False)
    return renderer


# --- one task ----------------------------------------------------------------------

REGIONS = ("head", "progress", "prompt", "steps", "executions", "log")
_STATUS_REGIONS = ("head", "progress", "prompt", "steps", "executions")
_DETAIL_REGIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    t.TASK_CREATED: _STATUS_REGIONS,
    t.TASK_STATUS: _STATUS_REGIONS,
    t.EXECUTION_STATUS: _STATUS_REGIONS,
    t.EXECUTION_CREATED: REGIONS,
    t.EXECUTION_PROGRESS: ("progress",),
    t.STEP_STARTED: ("progress", "steps"),
    t.STEP_COMPLETED: ("progress", "steps"),
    t.STEP_FAILED: ("progress", "steps"),
    t.EXECUTION_LOG: ("log",),
}


def task_detail_context(task: Task) -> dict[str, Any]:
    execution = task.latest_execution
    steps = selectors.execution_steps(execution)
    current_step = next((s for s in reversed(steps) if s.status != "pending"), None)
    failed_step = next((s for s in steps if s.status == "failed"), None)
    return {
        "task": task,
        "execution": execution,
        "executions": selectors.task_executions(task),
        "steps": steps,
        "current_step": current_step,
        "failed_step": failed_step,
        "log_lines": selectors.execution_log_tail(execution.pk) if execution else [],
        "log_limit": selectors.LOG_TAIL_LINES,
        "answer_form": AnswerForm(),
        # The buttons offered follow the state machine; the services still decide.
        "can_cancel": execution is not None and execution.status in ACTIVE,
        "can_retry": execution is not None and execution.status in RETRYABLE,
    }


def task_detail_regions(
    task_id: int, regions: tuple[str, ...] = REGIONS, *, answer_form: AnswerForm | None = None
) -> str:
    """The named regions of a task page at their current state, as out-of-band swaps."""
    task = selectors.task_detail(task_id)
    if task is None:
        return ""
    context = {**task_detail_context(task), **_SHARED}
    if answer_form is not None:
        context["answer_form"] = answer_form
    return "".join(render_to_string(f"{DETAIL_TEMPLATE}#{name}", context) for name in regions)


class TaskDetailRenderer:
    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        self.name = f"tasks.detail:{task_id}"

    def render(self, event: dict) -> str | None:
        if event.get("task_id") != self.task_id:
            return None
        regions = _DETAIL_REGIONS_BY_TYPE.get(event.get("type", ""))
        if not regions:
            return None
        latest = Task.objects.filter(pk=self.task_id).values_list("latest_execution_id", flat=True)
        latest_id = next(iter(latest), None)
        if event.get("type") == t.EXECUTION_LOG and event.get("execution_id") != latest_id:
            return None  # a line of an older attempt: the page shows the latest's
        if self._superseded(event, regions, latest_id):
            return None
        return task_detail_regions(self.task_id, regions) or None

    def _superseded(self, event: dict, regions: tuple[str, ...], latest_id: int | None) -> bool:
        """A later event of this task re-renders all of `regions` (see _LOOKAHEAD)."""
        later = Event.objects.filter(task_id=self.task_id, id__gt=event["id"]).order_by("id")
        covered: set[str] = set()
        for type_, execution_id in later.values_list("type", "execution_id")[:_LOOKAHEAD]:
            if type_ == t.EXECUTION_LOG and execution_id != latest_id:
                continue
            covered.update(_DETAIL_REGIONS_BY_TYPE.get(type_, ()))
            if covered.issuperset(regions):
                return True
        return False

    def snapshot(self, params: dict) -> str:
        return task_detail_regions(self.task_id)


def task_detail_renderer(task_id: int) -> TaskDetailRenderer:
    return TaskDetailRenderer(task_id)
