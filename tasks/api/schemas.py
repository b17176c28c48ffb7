"""The API's JSON shapes (request and response bodies), from which ninja writes the
OpenAPI document. Field names follow the contract (design.md, "Programs")."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field

from tasks.registry import DEFAULT_FUNCTION
from tasks.states import Status

StatusName = Literal["pending", "running", "waiting_for_input", "succeeded", "failed", "cancelled"]
StepStatusName = Literal["pending", "running", "succeeded", "failed", "skipped"]
LogLevel = Literal["debug", "info", "warning", "error"]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


def _iso_day(value: Any) -> Any:
    # pydantic would also take a number of seconds since 1970: the document says YYYY-MM-DD.
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date is YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


class Strict(Schema):
    """Request bodies: an unknown field is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


# -- errors -----------------------------------------------------------------------------


class Error(Schema):
    detail: str = Field(description="one line saying what was wrong")


# -- tasks, executions, steps ---------------------------------------------------------------


class StepOut(Schema):
    id: int
    index: int
    name: str
    status: StepStatusName
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error: str


class ProgressOut(Schema):
    done: int
    total: int | None
    percent: int | None
    message: str


class ExecutionOut(Schema):
    id: int
    task_id: int
    number: int = Field(description="1 for the first attempt, 2 for the first retry...")
    status: StatusName
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str
    prompt: str = Field(description="the question while it waits for input")
    answer: str = Field(description="the answer to the current prompt, once given")
    progress: ProgressOut
    result: Any = Field(description="what the function returned (JSON), once succeeded")
    cancel_requested: bool
    steps: list[StepOut]


class TaskOut(Schema):
    id: int
    title: str
    description: str
    function: str
    kwargs: dict[str, Any]
    status: StatusName = Field(description="the status of its latest execution")
    group: int | None = Field(description="the id of the group it is shared with")
    created_by: str | None = Field(description="the creator's username")
    created_at: datetime
    updated_at: datetime
    attempts: int
    max_attempts: int
    latest_execution: ExecutionOut | None


class TaskDetailOut(TaskOut):
    executions: list[ExecutionOut] = Field(description="every attempt, oldest first")
    last_event_id: int = Field(
        description="the log's last event id read before this state: follow "
        "/events/?task=ID with Last-Event-ID set to it and nothing is missed"
    )


class TaskPageOut(Schema):
    items: list[TaskOut]
    count: int = Field(description="matching tasks, counted up to count_cap")
    count_capped: bool = Field(description="true when there are more than count")
    page: int
    pages: int
    per_page: int


class TaskIn(Strict):
    title: str = Field(min_length=1, max_length=200, description="one line")
    function: str = Field(
        default=DEFAULT_FUNCTION,
        description="one of TASK_FUNCTIONS (staff-only ones need staff), or `external`",
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    group: int | Annotated[str, Field(max_length=150)] | None = Field(
        default=None, description="a group of yours (id or name) to share the task with"
    )


class TaskFiltersIn(Schema):
    """The dashboard list's filters."""

    status: StatusName | None = None
    q: str | None = Field(default=None, max_length=200, description="words in the title")
    function: str | None = Field(default=None, max_length=200)
    created_from: Day | None = None
    created_to: Day | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=25, ge=1, le=100)


class AnswerIn(Strict):
    answer: str = Field(min_length=1, max_length=10_000)


# -- events -----------------------------------------------------------------------------


class EventOut(Schema):
    id: int
    type: str
    at: str = Field(description="ISO 8601 with microseconds and offset")
    task_id: int | None
    execution_id: int | None
    data: dict[str, Any]


class EventsQuery(Schema):
    """The query of GET /api/events/ (the same filters as /events/)."""

    after: int = Field(default=0, ge=0, le=2**63 - 1, description="an event id")
    type: str | None = Field(
        default=None, max_length=2000, description="comma list; `step.*` prefix wildcards"
    )
    task: int | None = Field(default=None, ge=1, le=2**63 - 1)
    execution: int | None = Field(default=None, ge=1, le=2**63 - 1)
    limit: int = Field(default=100, ge=1, le=1000)


class EventsOut(Schema):
    events: list[EventOut]
    last_id: int = Field(description="pass as `after` to read on; equal to `after` when none")


# -- external executions' reports ---------------------------------------------------------


class StatusReport(Strict):
    status: Literal["running", "succeeded", "failed", "cancelled"]
    error: str | None = None
    result: Any = None


class StepReport(Strict):
    step: str = Field(min_length=1, max_length=200, description="the step's name, one line")
    status: Literal["started", "completed", "failed"]
    error: str | None = None


class ProgressIn(Strict):
    done: int = Field(ge=0, le=2**31 - 1)
    total: int | None = Field(default=None, ge=0, le=2**31 - 1)
    message: str = Field(default="", max_length=10_000)


class ProgressReport(Strict):
    progress: ProgressIn


class LogLineIn(Strict):
    level: LogLevel = "info"
    message: str


class LogReport(Strict):
    log: list[LogLineIn] = Field(min_length=1, max_length=1000)


class AskReport(Strict):
    ask: str = Field(
        min_length=1, max_length=10_000, description="the question; the execution waits for input"
    )


class HeartbeatReport(Strict):
    heartbeat: Literal[True]


REPORT_KINDS: dict[str, type[Strict]] = {
    # Tried in this order: the first whose key the body has (a step report also has
    # "status", so "step" comes first).
    "step": StepReport,
    "status": StatusReport,
    "progress": ProgressReport,
    "log": LogReport,
    "ask": AskReport,
    "heartbeat": HeartbeatReport,
}


class ReportOut(Schema):
    execution_id: int
    task_id: int
    status: StatusName
    cancel_requested: bool = Field(
        description="someone asked to cancel: stop and report cancelled (it is cancelled "
        "by force after WORKER_CANCEL_GRACE_SECONDS)"
    )
    prompt: str
    answer: str
    lease_expires_at: datetime | None
    lease_seconds: float = Field(description="report at least this often while running")
    last_event_id: int = Field(
        description="the log position after this report: follow /events/?execution=ID "
        "from it to receive the execution.answered event"
    )


ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING, Status.WAITING_FOR_INPUT)
