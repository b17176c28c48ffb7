"""Writes: keyword-only services named <entity>_<action>."""

import json
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from events import types
from events.api import event_emit
from tasks import signals
from tasks.models import TITLE_MAX_LENGTH, Execution, Step, Task
from tasks.registry import (
    DEFAULT_FUNCTION,
    task_function_permitted,
    task_function_resolve,
    task_kwargs_check,
)
from tasks.states import ACTIVE, Status, StepStatus, TaskInputError, TransitionNotAllowed

ANSWER_MAX_LENGTH = 10_000
LOG_MESSAGE_MAX_LENGTH = 10_000
PROGRESS_MESSAGE_MAX_LENGTH = 500
LOG_LEVELS = ("debug", "info", "warning", "error")


def task_kwargs_parse(raw: str | None) -> dict[str, Any]:
    """Parse a JSON object of keyword arguments, or raise TaskInputError."""
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TaskInputError(f"kwargs is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise TaskInputError(f"kwargs must be a JSON object, got {type(value).__name__}")
    return value


def task_title_clean(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise TaskInputError("title must not be empty")
    if len(title) > TITLE_MAX_LENGTH:
        raise TaskInputError(
            f"title is {len(title)} characters long; the most is {TITLE_MAX_LENGTH}"
        )
    if any(ord(c) < 32 for c in title):
        raise TaskInputError("title must be one line without control characters")
    return title


def task_create(
    *,
    title: str,
    function: str = DEFAULT_FUNCTION,
    kwargs: dict[str, Any] | None = None,
    args: list[Any] | None = None,
    description: str = "",
    created_by=None,
    max_attempts: int = 1,
) -> Task:
    """Create a task and enqueue its first execution, with their events, in one transaction.

    Every check runs before anything is written: bad input raises TaskInputError and
    creates nothing.
    """
    title = task_title_clean(title)
    kwargs = {} if kwargs is None else kwargs
    args = [] if args is None else args
    if not isinstance(kwargs, dict):
        raise TaskInputError(f"kwargs must be a JSON object, got {type(kwargs).__name__}")
    task_function = task_function_resolve(function)
    task_function_permitted(task_function.module_path, created_by)
    task_kwargs_check(task_function, args, kwargs)
    try:
        json.dumps([args, kwargs])
    except (TypeError, ValueError) as exc:
        raise TaskInputError(f"arguments must be JSON-serialisable: {exc}") from None
    if max_attempts < 1:
        raise TaskInputError("max_attempts must be at least 1")

    with transaction.atomic():
        task = Task.objects.create(
            title=title,
            description=description,
            function=task_function.module_path,
            args=args,
            kwargs=kwargs,
            created_by=created_by,
            max_attempts=max_attempts,
        )
        signals.task_created.send(sender=Task, task=task)
        execution_enqueue(task=task)
    return task


def execution_enqueue(*, task: Task) -> Execution:
    """Add the next numbered, pending execution of `task` and make it the latest.

    Must run inside a transaction that holds the task (creation or retry).
    """
    last = task.executions.order_by("-number").values_list("number", flat=True).first()
    execution = Execution.objects.create(task=task, number=(last or 0) + 1)
    previous_status = task.status
    task.latest_execution = execution
    task.status = execution.status
    task.save(update_fields=["latest_execution", "status", "updated_at"])
    signals.execution_created.send(sender=Execution, execution=execution)
    if last is not None and previous_status != execution.status:
        signals.task_status_changed.send(
            sender=Task,
            task=task,
            from_status=previous_status,
            to_status=execution.status,
            execution=execution,
        )
    transaction.on_commit(_wake_local_worker)
    return execution


def _wake_local_worker() -> None:
    # An in-process worker (inside `serve`) starts at once instead of at its next poll.
    from tasks.worker import wake_local_workers

    wake_local_workers()


def _locked(execution: Execution) -> Execution:
    """The execution's row, locked for the rest of the transaction."""
    try:
        return Execution.objects.select_for_update().get(pk=execution.pk)
    except Execution.DoesNotExist:
        raise TaskInputError(f"execution {execution.pk} does not exist") from None


def execution_cancel(*, execution: Execution) -> Execution:
    """Cancel: pending or waiting_for_input at once; running at its next checkpoint (or by
    force after WORKER_CANCEL_GRACE_SECONDS). Anything else is refused, changing nothing."""
    with transaction.atomic():
        current = _locked(execution)
        if current.status in (Status.PENDING, Status.WAITING_FOR_INPUT):
            current.transition(Status.CANCELLED)
            steps_abandon(execution=current, error="cancelled")
        elif current.status == Status.RUNNING:
            if current.cancel_requested_at is not None:
                raise TransitionNotAllowed(
                    f"execution {current.pk} is already being cancelled; it stops at its "
                    "next checkpoint"
                )
            current.cancel_requested_at = timezone.now()
            current.save(update_fields=["cancel_requested_at"])
            event_emit(
                type=types.EXECUTION_LOG,
                task_id=current.task_id,
                execution_id=current.pk,
                data={"level": "warning", "message": "cancel requested"},
            )
        else:
            raise TransitionNotAllowed(
                f"execution {current.pk} is {current.status}; it cannot be cancelled"
            )
    return current


def task_retry(*, task: Task) -> Execution:
    """A new numbered execution of `task`; only when its latest one failed or was cancelled."""
    with transaction.atomic():
        try:
            current = Task.objects.select_for_update().get(pk=task.pk)
        except Task.DoesNotExist:
            raise TaskInputError(f"task {task.pk} does not exist") from None
        latest = current.latest_execution
        if latest is None or latest.status not in (Status.FAILED, Status.CANCELLED):
            status = latest.status if latest else "without executions"
            raise TransitionNotAllowed(
                f"task {current.pk} is {status}; only a failed or cancelled task can be retried"
            )
        return execution_enqueue(task=current)


def execution_answer(*, execution: Execution, answer: str) -> Execution:
    """Store a person's answer to a waiting execution; a worker then resumes it."""
    if not isinstance(answer, str) or not answer.strip():
        raise TaskInputError("the answer must not be empty")
    if len(answer) > ANSWER_MAX_LENGTH:
        raise TaskInputError(
            f"the answer is {len(answer)} characters long; the most is {ANSWER_MAX_LENGTH}"
        )
    with transaction.atomic():
        current = _locked(execution)
        if current.status != Status.WAITING_FOR_INPUT:
            raise TransitionNotAllowed(
                f"execution {current.pk} is {current.status}; only an execution waiting for "
                "input can be answered"
            )
        if current.answer:
            raise TransitionNotAllowed(
                f"execution {current.pk} has already been answered; it resumes shortly"
            )
        current.answer = answer
        current.answers = [*current.answers, {"prompt": current.prompt, "answer": answer}]
        current.save(update_fields=["answer", "answers"])
        event_emit(
            type=types.EXECUTION_LOG,
            task_id=current.task_id,
            execution_id=current.pk,
            data={"level": "info", "message": "answer received"},
        )
        transaction.on_commit(_wake_local_worker)
    return current


def _require_active(current: Execution, what: str) -> None:
    if current.status not in ACTIVE or current.status == Status.PENDING:
        raise TransitionNotAllowed(
            f"execution {current.pk} is {current.status}; {what} only while it runs"
        )


def execution_progress(
    *, execution: Execution, done: int, total: int | None, message: str = ""
) -> Execution:
    """Record progress (done of total) and emit execution.progress with the row update."""
    if isinstance(done, bool) or not isinstance(done, int) or done < 0:
        raise TaskInputError(f"done must be a whole number of at least 0, got {done!r}")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise TaskInputError(f"total must be a whole number of at least 0, got {total!r}")
    if total is not None and done > total:
        raise TaskInputError(f"done ({done}) must not be more than total ({total})")
    message = " ".join(str(message).split())[:PROGRESS_MESSAGE_MAX_LENGTH]
    with transaction.atomic():
        current = _locked(execution)
        _require_active(current, "progress can be reported")
        current.progress_done = done
        current.progress_total = total
        current.progress_message = message
        current.save(update_fields=["progress_done", "progress_total", "progress_message"])
        event_emit(
            type=types.EXECUTION_PROGRESS,
            task_id=current.task_id,
            execution_id=current.pk,
            data={"done": done, "total": total, "percent": current.percent, "message": message},
        )
    for name in ("progress_done", "progress_total", "progress_message"):
        setattr(execution, name, getattr(current, name))
    return current


def execution_log(*, execution: Execution, level: str, message: str) -> None:
    """Append a log line (an execution.log event; log lines live only in the event log)."""
    if level not in LOG_LEVELS:
        raise TaskInputError(f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    message = str(message)
    if len(message) > LOG_MESSAGE_MAX_LENGTH:
        message = message[: LOG_MESSAGE_MAX_LENGTH - 1] + "…"
    with transaction.atomic():
        current = _locked(execution)
        _require_active(current, "log lines can be written")
        event_emit(
            type=types.EXECUTION_LOG,
            task_id=current.task_id,
            execution_id=current.pk,
            data={"level": level, "message": message},
        )


def steps_abandon(*, execution: Execution, error: str) -> None:
    """Fail the steps an execution left running (it was cancelled, lost or stopped)."""
    for step in Step.objects.filter(execution=execution, status=StepStatus.RUNNING):
        step.transition(StepStatus.FAILED, error=error)


# -- the engine's own writes (tasks.worker): claim, finish, recover ---------------------


def executions_claim(*, worker_id: str, limit: int, lease_seconds: float) -> list[int]:
    """Atomically take up to `limit` runnable executions (pending, or waiting with an answer)
    for `worker_id`, moving each to running under a lease. No execution is ever claimed twice:
    PostgreSQL skips rows another worker has locked; everywhere a conditional UPDATE on the
    status decides, so a second claimer updates no row."""
    if limit < 1:
        return []
    lease = timezone.now() + timedelta(seconds=lease_seconds)
    runnable = Q(status=Status.PENDING) | Q(status=Status.WAITING_FOR_INPUT, answer__gt="")
    claimed: list[int] = []
    # A plain read first: an idle worker takes no write lock (SQLite) on each poll.
    if not Execution.objects.filter(runnable).exists():
        return claimed
    with transaction.atomic():
        candidates = Execution.objects.filter(runnable).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        for pk, status in list(candidates.values_list("pk", "status")[:limit]):
            still = (
                Q(status=status) if status == Status.PENDING else Q(status=status, answer__gt="")
            )
            taken = Execution.objects.filter(still, pk=pk).update(
                worker_id=worker_id, lease_expires_at=lease
            )
            if taken != 1:
                continue
            Execution(pk=pk).transition(Status.RUNNING, worker_id=worker_id, lease_expires_at=lease)
            claimed.append(pk)
    return claimed


def executions_lease_renew(
    *, worker_id: str, execution_ids: list[int], lease_seconds: float
) -> int:
    """The heartbeat: push the lease of this worker's running executions forward."""
    if not execution_ids:
        return 0
    return Execution.objects.filter(
        pk__in=execution_ids, worker_id=worker_id, status=Status.RUNNING
    ).update(lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds))


def execution_held(*, execution_id: int, worker_id: str) -> Execution | None:
    """The locked row if `worker_id` still runs it, else None (it was reaped or cancelled)."""
    current = Execution.objects.select_for_update().filter(pk=execution_id).first()
    if current is None or current.status != Status.RUNNING or current.worker_id != worker_id:
        return None
    return current


def execution_recover(*, execution_id: int, reason: str, worker_id: str | None = None) -> str:
    """Take a running execution away from a lost (or stopping) worker: cancelled if a cancel
    was asked for, else failed with `reason`, and retried as a new numbered execution while
    the task's max_attempts allows. With `worker_id`, only if that worker still holds it;
    without, only if its lease has expired. Returns what happened ("" for nothing)."""
    with transaction.atomic():
        current = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if current is None or current.status != Status.RUNNING:
            return ""
        if worker_id is not None and current.worker_id != worker_id:
            return ""
        if worker_id is None and (
            current.lease_expires_at is None or current.lease_expires_at >= timezone.now()
        ):
            return ""
        steps_abandon(execution=current, error=reason)
        if current.cancel_requested_at is not None:
            current.transition(Status.CANCELLED, error=reason)
            return "cancelled"
        current.transition(Status.FAILED, error=reason)
        task = Task.objects.select_for_update().get(pk=current.task_id)
        if task.latest_execution_id == current.pk and current.number < task.max_attempts:
            retry = execution_enqueue(task=task)
            event_emit(
                type=types.EXECUTION_LOG,
                task_id=task.pk,
                execution_id=current.pk,
                data={
                    "level": "warning",
                    "message": f"retrying as attempt {retry.number} of {task.max_attempts}",
                },
            )
            return "retried"
        return "failed"


def executions_reap(*, cancel_grace_seconds: float) -> dict[str, int]:
    """Any worker runs this now and then: executions whose worker died (lease expired) never
    stay running, and a cancel the function ignores is forced after the grace period."""
    now = timezone.now()
    counts: dict[str, int] = {}
    expired = Execution.objects.filter(status=Status.RUNNING, lease_expires_at__lt=now)
    for pk, holder in list(expired.values_list("pk", "worker_id")[:100]):
        outcome = execution_recover(
            execution_id=pk,
            reason=f"worker lost: {holder or 'a worker'} stopped renewing its lease",
        )
        if outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
    overdue = Execution.objects.filter(
        status=Status.RUNNING,
        cancel_requested_at__lt=now - timedelta(seconds=cancel_grace_seconds),
    )
    for pk in list(overdue.values_list("pk", flat=True)[:100]):
        if execution_cancel_force(execution_id=pk, grace_seconds=cancel_grace_seconds):
            counts["forced"] = counts.get("forced", 0) + 1
    return counts


def execution_cancel_force(*, execution_id: int, grace_seconds: float) -> bool:
    """Cancel a running execution that did not reach a checkpoint within the grace period."""
    with transaction.atomic():
        current = Execution.objects.select_for_update().filter(pk=execution_id).first()
        if current is None or current.status != Status.RUNNING:
            return False
        requested = current.cancel_requested_at
        if requested is None or requested >= timezone.now() - timedelta(seconds=grace_seconds):
            return False
        reason = f"cancelled by force: it did not stop within {grace_seconds:g}s"
        steps_abandon(execution=current, error=reason)
        current.transition(Status.CANCELLED, error=reason)
        return True
