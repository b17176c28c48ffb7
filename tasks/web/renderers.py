"""Fragment renderers: the dashboard's live regions as out-of-band swaps for the stream.

A renderer renders the CURRENT state of what an event touched, read from the database,
never the event's own payload: a replayed or duplicated event converges on the truth
instead of going back in time. Renders depend on the viewer only through a scope that
many viewers share (the list: the viewer's grant, i.e. which tasks they see; a task page:
whether they may act), which is part of the renderer's name, so the hub renders once per
event per scope and shares it; the templates see no request or user.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any, TypedDict
from urllib.parse import urlencode

from django.template.loader import render_to_string

from events.api import event_heads_after
from events.audience import EVERYTHING, Grant
from events.types import EventJSON
from tasks import access, selectors
from tasks import event_types as t
from tasks.human_input import input_spec_read
from tasks.models import Task
from tasks.selectors import TaskFilters
from tasks.states import ACTIVE, RETRYABLE, Status
from tasks.web.forms import AnswerForm

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


def task_list_context(filters: TaskFilters, *, grant: Grant) -> dict[str, Any]:
    """The list as the viewers of `grant` (tasks.access.event_grant) see it."""
    visible = access.tasks_in_scope(grant)
    counts = selectors.task_status_counts(filters, visible=visible)
    return {
        "filters": filters,
        "page": selectors.task_page(filters, visible=visible),
        "counts": counts,
        "counts_total": sum(c.count for c in counts),
        "counts_capped": any(c.capped for c in counts),
        "statuses": Status.choices,
    }


def task_list_regions(filters: TaskFilters, *, grant: Grant) -> str:
    """Rows, counts and pager of one filtered page, as out-of-band swaps."""
    context = {**task_list_context(filters, grant=grant), **_SHARED}
    return "".join(
        render_to_string(f"{LIST_TEMPLATE}#{name}", context) for name in ("rows", "counts", "pager")
    )


class TaskListRenderer:
    """The list page for one set of filters as one scope of viewers sees it (`grant`:
    which tasks they may see); subscribers with the same filters and scope share it."""

    def __init__(self, filters: TaskFilters, grant: Grant = EVERYTHING) -> None:
        self.filters = filters
        self.grant = grant
        # Encoded, so that a value holding "&" or "=" cannot read as other filters.
        query = urlencode(sorted(filters.query().items()))
        self.name = f"tasks.list?{query}#{urlencode({'scope': grant.key})}"

    def render(self, event: EventJSON) -> str | None:
        if _list_event_superseded(event, self.grant):
            return None
        if event.get("type") in _LIST_PAGE_TYPES:
            return task_list_regions(self.filters, grant=self.grant)
        task_id = event.get("task_id")
        # Only a row the page shows: a swap with no target is an error in the browser.
        visible = access.tasks_in_scope(self.grant)
        if task_id is None or task_id not in selectors.task_page_ids(self.filters, visible=visible):
            return None
        task = selectors.task_row(task_id)
        if task is None:
            return None
        return render_to_string(f"{LIST_TEMPLATE}#row", {"task": task, **_SHARED})

    def snapshot(self) -> str:
        return task_list_regions(self.filters, grant=self.grant)


# Renders show current state, so an event followed in the log by one that re-renders
# at least the same regions needs no render of its own: under a burst (or a slow
# machine) the page skips to the present instead of replaying every step of the past.
# The later event reaches the same subscribers (same filter), so nothing is lost.
_LOOKAHEAD = 200


def _list_event_superseded(event: EventJSON, grant: Grant) -> bool:
    # Only later events this scope receives: one it never gets cannot stand in for this.
    page_wide = event["type"] in _LIST_PAGE_TYPES
    heads = event_heads_after(event["id"], types=LIST_EVENT_TYPES, limit=_LOOKAHEAD, grant=grant)
    for later in heads:
        if later.type in _LIST_PAGE_TYPES or (not page_wide and later.task_id == event["task_id"]):
            return True
    return False


_LIST_RENDERERS: OrderedDict[str, TaskListRenderer] = OrderedDict()
_LIST_RENDERERS_MAX = 2048
_lock = Lock()


def task_list_renderer(filters: TaskFilters, grant: Grant = EVERYTHING) -> TaskListRenderer:
    """One renderer per distinct filters and scope (a bounded cache); the hub shares
    renders by the renderer's name."""
    renderer = TaskListRenderer(filters, grant)
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
    t.EXECUTION_ANSWERED: ("head", "prompt"),
}


def detail_regions_of(event_type: str) -> tuple[str, ...]:
    """The task page's regions an event of `event_type` re-renders."""
    return _DETAIL_REGIONS_BY_TYPE.get(event_type, ())


def task_detail_context(
    task: Task, *, may_act: bool = False, may_retry: bool = False
) -> dict[str, Any]:
    """The task page; `may_act`/`may_retry`: the viewer's rights (tasks.access), which
    decide the buttons and the answer form shown."""
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
        "input_spec": input_spec_read(execution.input_spec) if execution else {},
        # The buttons offered follow the state machine; the services still decide.
        "can_cancel": may_act and execution is not None and execution.status in ACTIVE,
        "can_retry": may_retry and execution is not None and execution.status in RETRYABLE,
        "may_act": may_act,
    }


class Rights(TypedDict):
    """What a viewer may do on a task page: the buttons and forms it shows."""

    may_act: bool
    may_retry: bool


def task_detail_regions(
    task_id: int,
    regions: tuple[str, ...] = REGIONS,
    *,
    answer_form: AnswerForm | None = None,
    may_act: bool = False,
    may_retry: bool = False,
) -> str:
    """The named regions of a task page at their current state, as out-of-band swaps."""
    task = selectors.task_detail(task_id)
    if task is None:
        return ""
    context = {**task_detail_context(task, may_act=may_act, may_retry=may_retry), **_SHARED}
    if answer_form is not None:
        context["answer_form"] = answer_form
    return "".join(render_to_string(f"{DETAIL_TEMPLATE}#{name}", context) for name in regions)


class TaskDetailRenderer:
    """One task's page for the viewers with the same rights on it (see, act, retry)."""

    def __init__(self, task_id: int, *, may_act: bool = False, may_retry: bool = False) -> None:
        self.task_id = task_id
        self.may_act = may_act
        self.may_retry = may_retry
        rights = "retry" if may_retry else "act" if may_act else "view"
        self.name = f"tasks.detail:{task_id}:{rights}"

    def render(self, event: EventJSON) -> str | None:
        if event.get("task_id") != self.task_id:
            return None
        regions = _DETAIL_REGIONS_BY_TYPE.get(event["type"])
        if not regions:
            return None
        latest = Task.objects.filter(pk=self.task_id).values_list("latest_execution_id", flat=True)
        latest_id = next(iter(latest), None)
        if event.get("type") == t.EXECUTION_LOG and event.get("execution_id") != latest_id:
            return None  # a line of an older attempt: the page shows the latest's
        if self._superseded(event, regions, latest_id):
            return None
        return (
            task_detail_regions(
                self.task_id, regions, may_act=self.may_act, may_retry=self.may_retry
            )
            or None
        )

    def _superseded(
        self, event: EventJSON, regions: tuple[str, ...], latest_id: int | None
    ) -> bool:
        """A later event of this task re-renders all of `regions` (see _LOOKAHEAD)."""
        covered: set[str] = set()
        for later in event_heads_after(event["id"], task_id=self.task_id, limit=_LOOKAHEAD):
            if later.type == t.EXECUTION_LOG and later.execution_id != latest_id:
                continue
            covered.update(_DETAIL_REGIONS_BY_TYPE.get(later.type, ()))
            if covered.issuperset(regions):
                return True
        return False

    def snapshot(self) -> str:
        return task_detail_regions(self.task_id, may_act=self.may_act, may_retry=self.may_retry)


def task_detail_renderer(
    task_id: int, *, may_act: bool = False, may_retry: bool = False
) -> TaskDetailRenderer:
    return TaskDetailRenderer(task_id, may_act=may_act, may_retry=may_retry)
