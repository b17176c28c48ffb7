"""External executions (contract: Programs): tasks whose function is `external` are never
claimed by a worker; the program that runs them, in any language, reports through
`POST /api/executions/{id}/report/`, and each report lands here.

The same state machine, events and dashboard as worker-run executions: a report moves
the execution with `Execution.transition` / `Step.transition` and the services of
tasks.services, in one transaction under the execution's row lock. Every report renews
the execution's lease by WORKER_LEASE_SECONDS; the workers' reaper fails a running
external execution whose lease runs out with `runner lost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.api import last_event_id
from tasks.models import Execution, Step
from tasks.registry import EXTERNAL
from tasks.services import (
    ANSWER_MAX_LENGTH,
    LOG_LEVELS,
    execution_log_many,
    execution_progress,
    steps_abandon,
)
from tasks.states import ALLOWED, Status, StepStatus, TaskInputError, TransitionNotAllowed

STEP_NAME_MAX_LENGTH = 200
ERROR_MAX_LENGTH = 10_000
LOG_LINES_MAX = 1000  # per report


@dataclass(frozen=True)
class ReportOutcome:
    """What a runner needs back: the execution as it is now, and where the log stands."""

    execution: Execution
    last_event_id: int  # the log position just after this report's own events

    @property
    def lease_expires_at(self) -> datetime | None:
        return self.execution.lease_expires_at


def _one_line(text: str, what: str, max_length: int) -> str:
    text = str(text).strip()
    if not text:
        raise TaskInputError(f"{what} must not be empty")
    if len(text) > max_length:
        raise TaskInputError(f"{what} is {len(text)} characters long; the most is {max_length}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise TaskInputError(f"{what} must be one line without control characters")
    return text


def _bounded(text: str | None, what: str, max_length: int) -> str:
    text = "" if text is None else str(text)
    if len(text) > max_length:
        raise TaskInputError(f"{what} is {len(text)} characters long; the most is {max_length}")
    return text


def _locked_external(execution_id: int) -> Execution:
    current = Execution.objects.select_for_update().select_related("task").get(pk=execution_id)
    if current.task.function != EXTERNAL:
        raise TransitionNotAllowed(
            f"execution {current.pk} is run by a worker; only executions of external tasks "
            "take reports"
        )
    return current


def _lease() -> datetime:
    return timezone.now() + timedelta(seconds=settings.WORKER_LEASE_SECONDS)


def _renew(current: Execution) -> None:
    """Every report renews the lease of a running execution."""
    if current.status == Status.RUNNING:
        current.lease_expires_at = _lease()
        current.save(update_fields=["lease_expires_at"])


def _require_running(current: Execution, what: str) -> None:
    if current.status != Status.RUNNING:
        raise TransitionNotAllowed(
            f"execution {current.pk} is {current.status}; {what} only while it runs"
        )


def _done(current: Execution) -> ReportOutcome:
    _renew(current)
    # Read inside the transaction, after this report's events: anything that follows
    # (an answer, a cancel) waits for our row lock, so its events come after this id.
    position = last_event_id()
    return ReportOutcome(execution=current, last_event_id=position)


def external_status(
    *, execution_id: int, status: str, runner: str, error: str | None = None, result: Any = None
) -> ReportOutcome:
    """`{"status": ...}`: running (start, or go on after an answer), succeeded, failed or
    cancelled. Anything the state machine does not allow raises TransitionNotAllowed."""
    error = _bounded(error, "error", ERROR_MAX_LENGTH)
    with transaction.atomic():
        current = _locked_external(execution_id)
        if status == Status.RUNNING:
            if current.status == Status.RUNNING:
                pass  # already running: the report only renews the lease
            elif current.status == Status.WAITING_FOR_INPUT and not current.answer:
                raise TransitionNotAllowed(
                    f"execution {current.pk} waits for an answer to {current.prompt!r}; "
                    "report running once the execution.answered event arrives"
                )
            else:
                current.transition(
                    Status.RUNNING, worker_id=runner[:100], lease_expires_at=_lease()
                )
        elif status == Status.SUCCEEDED:
            if current.status != Status.RUNNING:
                current.transition(Status.SUCCEEDED)  # raises: the machine's own message
            # Steps the runner left open finished with the execution.
            for step in Step.objects.filter(execution=current, status=StepStatus.RUNNING):
                step.transition(StepStatus.SUCCEEDED)
            current.transition(Status.SUCCEEDED, result=result)
        elif status in (Status.FAILED, Status.CANCELLED):
            reason = error.strip() or ("failed" if status == Status.FAILED else "cancelled")
            if current.status not in (Status.PENDING, Status.RUNNING, Status.WAITING_FOR_INPUT):
                current.transition(status)  # raises
            if status in ALLOWED[current.status]:
                steps_abandon(execution=current, error=reason)
            current.transition(status, error=reason, result=result)
        else:
            raise TaskInputError(
                f"status must be one of running, succeeded, failed, cancelled, got {status!r}"
            )
        return _done(current)


def external_step(
    *, execution_id: int, name: str, status: str, error: str | None = None
) -> ReportOutcome:
    """`{"step": NAME, "status": "started"|"completed"|"failed"}`: step.* events, the
    dashboard's timeline. A step is started once and then completed or failed by name."""
    name = _one_line(name, "step", STEP_NAME_MAX_LENGTH)
    error = _bounded(error, "error", ERROR_MAX_LENGTH)
    if status not in ("started", "completed", "failed"):
        raise TaskInputError(
            f"a step's status must be started, completed or failed, got {status!r}"
        )
    with transaction.atomic():
        current = _locked_external(execution_id)
        _require_running(current, "steps are reported")
        running = (
            Step.objects.filter(execution=current, name=name, status=StepStatus.RUNNING)
            .order_by("-index")
            .first()
        )
        if status == "started":
            if running is not None:
                raise TransitionNotAllowed(f"step {name!r} is already running")
            index = Step.objects.filter(execution=current).count()
            step = Step.objects.create(execution=current, index=index, name=name)
            step.transition(StepStatus.RUNNING)
        else:
            if running is None:
                raise TransitionNotAllowed(
                    f"no step named {name!r} is running; report it started first"
                )
            if status == "completed":
                running.transition(StepStatus.SUCCEEDED)
            else:
                running.transition(StepStatus.FAILED, error=error.strip() or "failed")
        return _done(current)


def external_progress(
    *, execution_id: int, done: int, total: int | None, message: str = ""
) -> ReportOutcome:
    """`{"progress": {"done", "total", "message"}}`: execution.progress."""
    with transaction.atomic():
        current = _locked_external(execution_id)
        execution_progress(execution=current, done=done, total=total, message=message)
        return _done(current)


def external_log(*, execution_id: int, lines: list[tuple[str, str]]) -> ReportOutcome:
    """`{"log": [{"level", "message"}, ...]}`: one execution.log event per line, all or
    none."""
    if not lines:
        raise TaskInputError("log must hold at least one line")
    if len(lines) > LOG_LINES_MAX:
        raise TaskInputError(
            f"log holds {len(lines)} lines; the most per report is {LOG_LINES_MAX}"
        )
    for level, _ in lines:
        if level not in LOG_LEVELS:
            raise TaskInputError(f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    with transaction.atomic():
        current = _locked_external(execution_id)
        execution_log_many(execution=current, lines=lines)
        return _done(current)


def external_ask(*, execution_id: int, prompt: str) -> ReportOutcome:
    """`{"ask": PROMPT}`: waiting_for_input. The answer reaches the runner as an
    execution.answered event on /events/?execution=ID; it then reports running."""
    prompt = str(prompt).strip()
    if not prompt:
        raise TaskInputError("ask needs a prompt")
    if len(prompt) > ANSWER_MAX_LENGTH:
        raise TaskInputError(
            f"the prompt is {len(prompt)} characters long; the most is {ANSWER_MAX_LENGTH}"
        )
    with transaction.atomic():
        current = _locked_external(execution_id)
        current.transition(Status.WAITING_FOR_INPUT, prompt=prompt)
        return _done(current)


def external_heartbeat(*, execution_id: int) -> ReportOutcome:
    """`{"heartbeat": true}`: renews the lease and changes nothing else."""
    with transaction.atomic():
        current = _locked_external(execution_id)
        if current.status not in (Status.RUNNING, Status.WAITING_FOR_INPUT):
            raise TransitionNotAllowed(
                f"execution {current.pk} is {current.status}; heartbeats are reported only "
                "while it runs"
            )
        return _done(current)
