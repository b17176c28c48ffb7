"""Reads for running a fleet: workers, the queue, health figures, the inbox, a task's history.

Visibility always comes from tasks.access; the event log is read only through events.api.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

from events.api import events_after, events_last
from events.types import EventJSON
from tasks import access
from tasks import event_types as t
from tasks.human_input import InputSpec, input_spec_read
from tasks.models import Execution, Task, Worker
from tasks.selectors import count_bounded
from tasks.states import Status

WORKERS_SHOWN_GONE = 20  # stopped or lost workers still listed, newest first
INBOX_SHOWN = 100
HISTORY_PAGE = 500
CHART_MINUTES = 60
DURATION_SAMPLE = 20_000  # finished executions read at most for the percentiles
DURATION_FUNCTIONS = 12


# --- workers and the queue ------------------------------------------------------------


@dataclass(frozen=True)
class RunningExecution:
    execution_id: int
    task_id: int
    number: int
    function: str
    started_at: datetime | None


@dataclass(frozen=True)
class WorkerRow:
    worker: Worker
    alive: bool
    running: list[RunningExecution]


def worker_rows(now: datetime | None = None) -> list[WorkerRow]:
    """Running workers, then the latest stopped or lost ones, each with what it runs."""
    now = now or timezone.now()
    running = list(Worker.objects.filter(state=Worker.State.RUNNING).order_by("-started_at"))
    gone = list(
        Worker.objects.exclude(state=Worker.State.RUNNING).order_by("-stopped_at", "-id")[
            :WORKERS_SHOWN_GONE
        ]
    )
    ids = [w.worker_id for w in running]
    by_worker: dict[str, list[RunningExecution]] = defaultdict(list)
    rows = (
        Execution.objects.filter(status=Status.RUNNING, worker_id__in=ids)
        .order_by("id")
        .values_list("pk", "task_id", "number", "task__function", "started_at", "worker_id")
    )
    for pk, task_id, number, function, started_at, worker_id in rows:
        by_worker[worker_id].append(RunningExecution(pk, task_id, number, function, started_at))
    return [WorkerRow(w, w.is_alive(now), by_worker.get(w.worker_id, [])) for w in running] + [
        WorkerRow(w, False, []) for w in gone
    ]


def workers_alive(now: datetime | None = None) -> bool:
    """Has any worker been seen within its lease (WORKER_LEASE_SECONDS by default)?"""
    now = now or timezone.now()
    return Worker.objects.filter(state=Worker.State.RUNNING, expires_at__gte=now).exists()


@dataclass(frozen=True)
class QueueRow:
    function: str
    pending: int
    oldest: datetime


def queue_by_function() -> list[QueueRow]:
    """Pending executions per function, with the oldest one's creation time."""
    rows = (
        Execution.objects.filter(status=Status.PENDING)
        .values("task__function")
        .annotate(pending=Count("id"), oldest=Min("created_at"))
        .order_by("oldest")
    )
    return [QueueRow(r["task__function"], r["pending"], r["oldest"]) for r in rows]


# --- the header of every page: inbox count and the no-worker banner --------------------


@dataclass(frozen=True)
class Chrome:
    """What the header shows one person: their inbox count, and the banner when work they
    can see is pending while no worker is alive."""

    inbox_count: int
    inbox_capped: bool
    pending: int
    pending_capped: bool
    worker_alive: bool

    @property
    def banner(self) -> bool:
        return self.pending > 0 and not self.worker_alive


def inbox_queryset(user: Any) -> QuerySet[Execution]:
    """Executions waiting for input on tasks `user` may act on (answered ones included:
    they show who answered until a worker resumes them)."""
    return Execution.objects.filter(
        status=Status.WAITING_FOR_INPUT, task__in=access.tasks_actionable(user)
    )


def chrome_for(user: Any) -> Chrome:
    inbox, inbox_capped = count_bounded(inbox_queryset(user).filter(answer=""), cap=999)
    pending, pending_capped = count_bounded(
        access.tasks_visible(user).filter(status=Status.PENDING)
    )
    return Chrome(inbox, inbox_capped, pending, pending_capped, workers_alive())


# --- the inbox ------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    execution: Execution
    spec: InputSpec

    @property
    def field_id(self) -> str:
        return f"answer-{self.execution.pk}"


def inbox_items(user: Any, limit: int = INBOX_SHOWN) -> list[InboxItem]:
    rows = (
        inbox_queryset(user)
        .select_related("task", "answered_by", "task__created_by")
        .order_by("pk")[:limit]
    )
    return [InboxItem(e, input_spec_read(e.input_spec)) for e in rows]


# --- health figures -------------------------------------------------------------------


@dataclass(frozen=True)
class MinuteCount:
    start: datetime
    succeeded: int
    failed: int


def finished_per_minute(
    now: datetime | None = None, minutes: int = CHART_MINUTES
) -> list[MinuteCount]:
    """Executions that succeeded or failed in each of the last `minutes` minutes, oldest
    first (the current minute last)."""
    now = now or timezone.now()
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    counts: dict[tuple[datetime, str], int] = {}
    rows = (
        Execution.objects.filter(
            finished_at__gte=start,
            finished_at__lt=end,
            status__in=(Status.SUCCEEDED, Status.FAILED),
        )
        .annotate(minute=TruncMinute("finished_at"))
        .values("minute", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[(row["minute"], row["status"])] = row["n"]
    result = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        result.append(
            MinuteCount(
                minute,
                counts.get((minute, Status.SUCCEEDED), 0),
                counts.get((minute, Status.FAILED), 0),
            )
        )
    return result


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (not empty)."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class FunctionDurations:
    function: str
    count: int
    p50_ms: float
    p95_ms: float


def durations_by_function(now: datetime | None = None) -> list[FunctionDurations]:
    """p50 and p95 run time (started to finished) per function, over the executions that
    succeeded or failed in the last hour; the busiest functions first."""
    now = now or timezone.now()
    rows = (
        Execution.objects.filter(
            finished_at__gte=now - timedelta(hours=1),
            status__in=(Status.SUCCEEDED, Status.FAILED),
            started_at__isnull=False,
        )
        .order_by("-finished_at")
        .values_list("task__function", "started_at", "finished_at")[:DURATION_SAMPLE]
    )
    by_function: dict[str, list[float]] = defaultdict(list)
    for function, started, finished in rows:
        if started is not None and finished is not None:
            by_function[function].append((finished - started).total_seconds() * 1000)
    result = []
    for function, values in by_function.items():
        values.sort()
        result.append(
            FunctionDurations(function, len(values), percentile(values, 50), percentile(values, 95))
        )
    result.sort(key=lambda d: (-d.count, d.function))
    return result[:DURATION_FUNCTIONS]


# --- a task's history -----------------------------------------------------------------


@dataclass
class HistoryPage:
    events: list[EventJSON]
    earlier: int | None  # `before=` of the previous page, if there is one
    later: int | None  # `after=` of the next page, if there is one
    tail: bool  # the page ends with the newest event: it goes on live
    actors: dict[int, str] = field(default_factory=dict)


def task_history(
    task: Task,
    *,
    before: int | None = None,
    after: int | None = None,
    up_to: int | None = None,
    size: int = HISTORY_PAGE,
) -> HistoryPage:
    """One page of the task's events in id order: the newest by default, else the page
    before `before` or after `after`. `up_to` is the last id the page was rendered with."""
    if after is not None:
        events = events_after(after, task_id=task.pk, limit=size + 1, up_to_id=up_to)
        more_later = len(events) > size
        events = events[:size]
        tail = not more_later
        earlier = events[0]["id"] if events else None
        later = events[-1]["id"] if more_later else None
        if earlier is not None and not events_last(before_id=earlier, task_id=task.pk, limit=1):
            earlier = None
    else:
        events = events_last(before_id=before, task_id=task.pk, limit=size + 1)
        if up_to is not None:
            events = [e for e in events if e["id"] <= up_to]
        has_earlier = len(events) > size
        events = events[-size:] if has_earlier else events
        earlier = events[0]["id"] if has_earlier and events else None
        tail = before is None
        later = events[-1]["id"] if not tail and events else None
    return HistoryPage(events, earlier, later, tail, history_actors(task, events))


def history_actors(task: Task, events: list[EventJSON]) -> dict[int, str]:
    """Who did what each event records, by event id: the creator, the person who asked for
    an attempt, answered or cancelled it ("" where it was the system or a command line)."""
    execution_ids = {e["execution_id"] for e in events if e["execution_id"] is not None}
    executions = {
        e.pk: e
        for e in Execution.objects.filter(pk__in=execution_ids).select_related(
            "created_by", "cancelled_by"
        )
    }
    creator = task.created_by.get_username() if task.created_by else ""
    actors: dict[int, str] = {}
    for event in events:
        kind = event["type"]
        data = event.get("data") or {}
        execution = executions.get(event.get("execution_id") or 0)
        who = ""
        if kind == t.TASK_CREATED:
            who = creator
        elif kind == t.EXECUTION_ANSWERED:
            who = str(data.get("by") or "")
        elif kind == t.EXECUTION_CREATED and execution is not None and execution.created_by:
            who = execution.created_by.get_username()
        elif (
            execution is not None
            and execution.cancelled_by
            and (
                (kind in (t.EXECUTION_STATUS, t.TASK_STATUS) and data.get("to") == "cancelled")
                or (kind == t.EXECUTION_LOG and data.get("message") == "cancel requested")
            )
        ):
            who = execution.cancelled_by.get_username()
        actors[event["id"]] = who
    return actors
