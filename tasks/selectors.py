"""Reads: query helpers for the dashboard, the commands and the engine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from events.api import events_after, events_last
from events.types import EventJSON
from tasks import event_types
from tasks.models import Execution, Step, Task
from tasks.states import Status

# Counts past this are shown as "10,000+": a count never scans more rows than this.
COUNT_CAP = 10_000
PAGE_SIZE = 25
LOG_TAIL_LINES = 200


# --- dashboard: the task list -------------------------------------------------------


@dataclass(frozen=True)
class TaskFilters:
    """What the list shows; every field already validated (see tasks.web.forms)."""

    status: str = ""
    q: str = ""
    function: str = ""
    created_from: date | None = None
    created_to: date | None = None
    page: int = 1

    def query(self, *, page: int | None = None, **changes: object) -> dict[str, str]:
        """The URL query of these filters (empty fields left out), with `changes`."""
        values = {
            "status": self.status,
            "q": self.q,
            "function": self.function,
            "created_from": self.created_from.isoformat() if self.created_from else "",
            "created_to": self.created_to.isoformat() if self.created_to else "",
        }
        values.update({k: str(v) if v is not None else "" for k, v in changes.items()})
        page = self.page if page is None else page
        if page != 1:
            values["page"] = str(page)
        return {k: v for k, v in values.items() if v}


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def task_filtered(
    filters: TaskFilters, *, visible: QuerySet[Task], with_status: bool = True
) -> QuerySet[Task]:
    """The tasks of `visible` (tasks.access.tasks_visible: what the viewer may see) that
    match `filters`, newest first (status left out when `with_status` is off, for the
    counts by status)."""
    qs = visible
    if with_status and filters.status:
        qs = qs.filter(status=filters.status)
    if filters.q:
        qs = qs.filter(title__icontains=filters.q)
    if filters.function:
        qs = qs.filter(function=filters.function)
    if filters.created_from:
        qs = qs.filter(created_at__gte=_day_start(filters.created_from))
    if filters.created_to:
        qs = qs.filter(created_at__lt=_day_start(filters.created_to + timedelta(days=1)))
    return qs.order_by("-created_at", "-id")


def count_bounded(qs: QuerySet[Any], cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(count, capped): COUNT over at most cap+1 rows, so a huge table stays cheap."""
    n = qs.order_by()[: cap + 1].count()
    return (cap, True) if n > cap else (n, False)


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int
    capped: bool


def task_status_counts(filters: TaskFilters, *, visible: QuerySet[Task]) -> list[StatusCount]:
    """Bounded counts per status of the visible tasks matching every filter but the status."""
    base = task_filtered(filters, visible=visible, with_status=False)
    counts = []
    for value, label in Status.choices:
        n, capped = count_bounded(base.filter(status=value))
        counts.append(StatusCount(value, str(label), n, capped))
    return counts


@dataclass
class TaskPage:
    rows: list[Task]
    number: int
    num_pages: int
    count: int
    capped: bool
    size: int = PAGE_SIZE

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def first_index(self) -> int:
        return 0 if not self.rows else (self.number - 1) * self.size + 1

    @property
    def last_index(self) -> int:
        return (self.number - 1) * self.size + len(self.rows)


def task_rows(qs: QuerySet[Task]) -> QuerySet[Task]:
    """Tasks with what a list row shows: latest execution and its current step."""
    steps = Step.objects.filter(execution_id=OuterRef("latest_execution_id")).exclude(
        status="pending"
    )
    current = steps.order_by("-index")
    return qs.select_related("latest_execution").annotate(
        current_step=Subquery(current.values("name")[:1])
    )


def task_page(filters: TaskFilters, *, visible: QuerySet[Task], size: int = PAGE_SIZE) -> TaskPage:
    """One page of the filtered list; a page past the end shows the last one."""
    qs = task_filtered(filters, visible=visible)
    count, capped = count_bounded(qs)
    num_pages = max(1, math.ceil(count / size))
    number = min(max(1, filters.page), num_pages)
    offset = (number - 1) * size
    rows = list(task_rows(qs)[offset : offset + size])
    return TaskPage(
        rows=rows,
        number=number,
        num_pages=num_pages,
        count=count,
        capped=capped,
        size=size,
    )


def task_page_ids(
    filters: TaskFilters, *, visible: QuerySet[Task], size: int = PAGE_SIZE
) -> list[int]:
    """Ids of the tasks on the page `filters` asks for (one indexed query, no count)."""
    offset = (max(1, filters.page) - 1) * size
    qs = task_filtered(filters, visible=visible)
    return list(qs.values_list("id", flat=True)[offset : offset + size])


def task_row(task_id: int) -> Task | None:
    return task_rows(Task.objects.filter(pk=task_id)).first()


def task_functions_used(*, visible: QuerySet[Task]) -> list[str]:
    """Distinct functions of the visible tasks (for the function filter)."""
    return list(visible.order_by("function").values_list("function", flat=True).distinct())


# --- dashboard: one task -----------------------------------------------------------


def task_detail(task_id: int) -> Task | None:
    """One task with what its page shows (after tasks.access decided the viewer may)."""
    return (
        Task.objects.select_related("latest_execution", "created_by", "group")
        .filter(pk=task_id)
        .first()
    )


def task_executions(task: Task) -> list[Execution]:
    return list(task.executions.order_by("-number"))


def execution_steps(execution: Execution | None) -> list[Step]:
    if execution is None:
        return []
    return list(execution.steps.order_by("index"))


@dataclass(frozen=True)
class LogLine:
    id: int
    at: datetime
    level: str
    message: str

    @classmethod
    def of(cls, event: EventJSON) -> LogLine:
        data = event["data"]
        return cls(
            id=event["id"],
            at=datetime.fromisoformat(event["at"]),
            level=str(data.get("level") or "info"),
            message=str(data.get("message", "")),
        )


def execution_log_tail(execution_id: int, *, limit: int = LOG_TAIL_LINES) -> list[LogLine]:
    """The last `limit` log lines of an execution, oldest first."""
    events = events_last(limit=limit, types=[event_types.EXECUTION_LOG], execution_id=execution_id)
    return [LogLine.of(event) for event in events]


def execution_log_page(execution_id: int, *, after_id: int = 0, limit: int = 500) -> list[LogLine]:
    """One page of an execution's log lines after `after_id`, oldest first (the download
    reads the whole log this way, a page at a time)."""
    events = events_after(
        after_id, types=[event_types.EXECUTION_LOG], execution_id=execution_id, limit=limit
    )
    return [LogLine.of(event) for event in events]
