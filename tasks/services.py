"""Writes: keyword-only services named <entity>_<action>."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from events.api import NewEvent, event_emit, event_emit_many
from tasks import bounds, runnable, signals
from tasks import event_types as types
from tasks.access import groups_offered, task_audience_by_id
from tasks.human_input import answer_check, input_spec_read
from tasks.models import Execution, Step, Task
from tasks.registry import (
    DEFAULT_FUNCTION,
    EXTERNAL,
    task_function_listed,
    task_function_permitted,
    task_function_resolve,
    task_kwargs_check,
)
from tasks.states import ACTIVE, RETRYABLE, Status, StepStatus, TaskInputError, TransitionNotAllowed

# Defaults of the settings TASK_ANSWER_MAX_LENGTH and TASK_LOG_LINE_MAX_LENGTH, which decide.
ANSWER_MAX_LENGTH = 10_000
LOG_MESSAGE_MAX_LENGTH = 10_000
PROGRESS_MESSAGE_MAX_LENGTH = 500
LOG_LEVELS = ("debug", "info", "warning", "error")
RUNNER_LOST = "runner lost"  # contract: an external execution whose lease ran out


def task_kwargs_parse(raw: str | None) -> dict[str, Any]:
    """Parse a JSON object of keyword arguments, or raise TaskInputError (one line):
    within TASK_KWARGS_MAX_BYTES, no NaN/Infinity, not too deep, storable text."""
    return bounds.kwargs_parse(raw)


def task_title_clean(title: str) -> str:
    return bounds.title_clean(title)


def task_create(
    *,
    title: str,
    function: str = DEFAULT_FUNCTION,
    kwargs: dict[str, Any] | None = None,
    args: list[Any] | None = None,
    description: str = "",
    created_by: User | None = None,
    group: Group | None = None,
    max_attempts: int = 1,
) -> Task:
    """Create a task and enqueue its first execution, with their events, in one transaction.

    Every check runs before anything is written: bad input raises TaskInputError and
    creates nothing. `created_by=None` is the server's own command line (the system);
    a person may share the task only with one of their own groups.
    """
    title = task_title_clean(title)
    description = bounds.description_clean(description)
    kwargs = {} if kwargs is None else kwargs
    args = [] if args is None else args
    if not isinstance(kwargs, dict):
        raise TaskInputError(
            f"kwargs must be a JSON object, got {type(kwargs).__name__}", field="kwargs"
        )
    if not isinstance(args, list):
        raise TaskInputError(f"args must be a list, got {type(args).__name__}", field="args")
    bounds.kwargs_check(kwargs)
    bounds.kwargs_check(args, what="args")
    if (function or "").strip() == EXTERNAL:
        # Its runner, not a Python signature, decides what the arguments mean.
        function_path = EXTERNAL
    else:
        task_function_listed(function)
        task_function = task_function_resolve(function)
        function_path = task_function.module_path
        task_function_permitted(function_path, created_by)
        task_kwargs_check(task_function, args, kwargs)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise TaskInputError("max_attempts must be at least 1", field="max_attempts")
    # A person shares only with one of their own groups; the command line with any.
    if (
        group is not None
        and created_by is not None
        and not groups_offered(created_by).filter(pk=group.pk).exists()
    ):
        raise TaskInputError(f"group {group.name!r} is not one of your groups", field="group")

    with transaction.atomic():
        task = Task.objects.create(
            title=title,
            description=description,
            function=function_path,
            args=args,
            kwargs=kwargs,
            created_by=created_by,
            group=group,
            max_attempts=max_attempts,
        )
        signals.task_created.send(sender=Task, task=task)
        execution_enqueue(task=task, by=created_by)
    return task


def task_rerun(*, source: Task, created_by: User | None = None, **fields: Any) -> Task:
    """ "Run again with changes": a new task from `fields` (task_create's), linked back to
    `source`, in one transaction. The caller checked that `created_by` may act on `source`
    (tasks.access); task_create checks the function like any creation."""
    with transaction.atomic():
        task = task_create(created_by=created_by, **fields)
        task.rerun_of = source
        task.save(update_fields=["rerun_of", "updated_at"])
    return task


def execution_enqueue(*, task: Task, by: User | None = None) -> Execution:
    """Add the next numbered, pending execution of `task` and make it the latest; `by` is
    the person who asked for it (None: the command line or the system).

    Runs in the transaction that created the task, or that holds its latest execution
    (retry, recovery): nothing else can change the task meanwhile.
    """
    last = task.executions.order_by("-number").values_list("number", flat=True).first()
    execution = Execution.objects.create(task=task, number=(last or 0) + 1, created_by=by)
    signals.execution_created.send(sender=Execution, execution=execution)
    task.show(execution, new=True)
    transaction.on_commit(runnable.announce)
    return execution


def _held(execution_id: int) -> Execution:
    """The execution's row, held for the rest of the transaction (Execution.objects.held)."""
    current = Execution.objects.held(execution_id)
    if current is None:
        raise TaskInputError(f"execution {execution_id} does not exist")
    return current


def _log_line(execution: Execution, level: str, message: str) -> None:
    event_emit(
        type=types.EXECUTION_LOG,
        task_id=execution.task_id,
        execution_id=execution.pk,
        data={"level": level, "message": message},
        audience=task_audience_by_id(execution.task_id),
    )


def execution_cancel(*, execution: Execution, by: User | None = None) -> Execution:
    """Cancel: pending or waiting_for_input at once; running at its next checkpoint (or by
    force after WORKER_CANCEL_GRACE_SECONDS). Anything else is refused, changing nothing.
    `by` (the person; None from the command line) is kept for the history."""
    with transaction.atomic():
        current = _held(execution.pk)
        if by is not None and current.status in ACTIVE and current.cancel_requested_at is None:
            current.cancelled_by = by
            current.save(update_fields=["cancelled_by"])
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
            _log_line(current, "warning", "cancel requested")
        else:
            raise TransitionNotAllowed(
                f"execution {current.pk} is {current.status}; it cannot be cancelled"
            )
    return current


def task_retry(*, task: Task, by: User | None = None) -> Execution:
    """A new numbered execution of `task`; only when its latest one failed or was cancelled.
    `by` (the person; None from the command line) is kept for the history.

    Holds the task's latest execution, the row every writer of the task holds."""
    with transaction.atomic():
        seen = list(Task.objects.filter(pk=task.pk).values_list("latest_execution", flat=True))
        if not seen:
            raise TaskInputError(f"task {task.pk} does not exist")
        held = Execution.objects.held(seen[0]) if seen[0] else None
        # Read after the hold: a retry that got there first made another one the latest.
        current = Task.objects.select_related("latest_execution").get(pk=task.pk)
        latest = current.latest_execution
        if held is None or latest is None or latest.pk != held.pk or held.status not in RETRYABLE:
            status = latest.status if latest else "without executions"
            raise TransitionNotAllowed(
                f"task {current.pk} is {status}; only a failed or cancelled task can be retried"
            )
        return execution_enqueue(task=current, by=by)


def execution_answer(*, execution: Execution, answer: str, by: User | None = None) -> Execution:
    """Store a person's answer to a waiting execution; a worker then resumes it.

    The answer must fit the question (one of its choices, if it has any); who answered
    (`by`, None from the command line) and when are stored, and `execution.answered`
    `{answer, by}` tells every other viewer at once."""
    answer = bounds.answer_check(answer)
    with transaction.atomic():
        current = _held(execution.pk)
        if current.status != Status.WAITING_FOR_INPUT:
            raise TransitionNotAllowed(
                f"execution {current.pk} is {current.status}; only an execution waiting for "
                "input can be answered"
            )
        if current.answer:
            who = f" by {current.answered_by.get_username()}" if current.answered_by else ""
            raise TransitionNotAllowed(
                f"execution {current.pk} has already been answered{who}; it resumes shortly"
            )
        answer = answer_check(input_spec_read(current.input_spec), answer)
        username = by.get_username() if by is not None else ""
        now = timezone.now()
        current.answer = answer
        current.answered_by = by
        current.answered_at = now
        current.answers = [*current.answers, {"prompt": current.prompt, "answer": answer}]
        current.save(update_fields=["answer", "answered_by", "answered_at", "answers"])
        _log_line(current, "info", "answer received")
        event_emit(
            type=types.EXECUTION_ANSWERED,
            task_id=current.task_id,
            execution_id=current.pk,
            data={"answer": answer, "by": username},
            audience=task_audience_by_id(current.task_id),
        )
        transaction.on_commit(runnable.announce)
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
        raise TaskInputError(
            f"done must be a whole number of at least 0, got {done!r}", field="done"
        )
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise TaskInputError(
            f"total must be a whole number of at least 0, got {total!r}", field="total"
        )
    if total is not None and done > total:
        raise TaskInputError(f"done ({done}) must not be more than total ({total})", field="done")
    message = " ".join(bounds.text_clean(message).split())[:PROGRESS_MESSAGE_MAX_LENGTH]
    with transaction.atomic():
        current = _held(execution.pk)
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
            audience=task_audience_by_id(current.task_id),
        )
    for name in ("progress_done", "progress_total", "progress_message"):
        setattr(execution, name, getattr(current, name))
    return current


def execution_log(*, execution: Execution, level: str, message: str) -> None:
    """Append a log line (an execution.log event; log lines live only in the event log).

    A line is cut to TASK_LOG_LINE_MAX_LENGTH; past TASK_LOG_LINES_MAX lines per execution
    the rest are dropped and counted, and one line says how many when it ends."""
    execution_log_many(execution=execution, lines=[(level, message)])


def execution_log_many(
    *, execution: Execution, lines: Sequence[tuple[str, str]], worker_id: str | None = None
) -> Execution:
    """Append log lines `(level, message)` in one transaction: one execution.log event
    each, in order, with increasing ids (execution_log for a burst: one row lock, one
    count update, one read of the audience and one INSERT, whatever the number of lines).

    The same bounds as execution_log, kept exact: lines past TASK_LOG_LINES_MAX are
    dropped and counted. With `worker_id`, only while that worker holds the execution.
    Returns the held row as it was read (its status and cancel request tell a writer
    that batches lines what happened meanwhile)."""
    for level, _ in lines:
        if level not in LOG_LEVELS:
            raise TaskInputError(
                f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}", field="level"
            )
    cleaned = [(level, bounds.log_line_clean(message)) for level, message in lines]
    with transaction.atomic():
        current = _held(execution.pk)
        _require_active(current, "log lines can be written")
        if worker_id is not None and current.worker_id != worker_id:
            raise TransitionNotAllowed(
                f"execution {current.pk} is no longer held by worker {worker_id}"
            )
        if not cleaned:
            return current
        Execution.objects.filter(pk=current.pk).update(log_lines=F("log_lines") + len(cleaned))
        kept = cleaned[: max(0, settings.TASK_LOG_LINES_MAX - current.log_lines)]
        if kept:  # the rest are dropped; counted
            audience = task_audience_by_id(current.task_id)
            event_emit_many(
                [
                    NewEvent(
                        type=types.EXECUTION_LOG,
                        task_id=current.task_id,
                        execution_id=current.pk,
                        data={"level": level, "message": message},
                        audience=audience,
                    )
                    for level, message in kept
                ]
            )
    return current


def steps_abandon(*, execution: Execution, error: str) -> None:
    """Fail the steps a held execution left running (cancelled, lost or stopped)."""
    for step in execution.steps.filter(status=StepStatus.RUNNING):
        step.transition(StepStatus.FAILED, error=error)


def step_start(*, execution: Execution, index: int, name: str) -> Step:
    """Add step `index` of a running execution and start it (step.started)."""
    with transaction.atomic():
        current = _held(execution.pk)
        step = current.steps.create(index=index, name=name)
        step.transition(StepStatus.RUNNING)
    return step


# -- the engine's own writes (tasks.engine.worker): claim, finish, recover ---------------------


def executions_claim(*, worker_id: str, limit: int, lease_seconds: float) -> list[int]:
    """Take up to `limit` runnable executions (pending, or waiting with an answer) for
    `worker_id`, moving each to running under a lease, one transaction each. No execution
    is claimed twice: each is held and checked before its transition (on PostgreSQL a row
    another worker holds is skipped; SQLite's IMMEDIATE transactions take turns)."""
    if limit < 1:
        return []
    lease = timezone.now() + timedelta(seconds=lease_seconds)
    # External executions are run by their own runner (the report API), never claimed.
    runnable = (Q(status=Status.PENDING) | Q(status=Status.WAITING_FOR_INPUT, answer__gt="")) & ~Q(
        task__function=EXTERNAL
    )
    # A plain read first: an idle worker takes no write lock (SQLite) on each poll.
    candidates = Execution.objects.filter(runnable).order_by("id").values_list("pk", flat=True)
    claimed: list[int] = []
    for pk in list(candidates[:limit]):
        with transaction.atomic():
            current = Execution.objects.held(pk, skip_locked=True)
            if current is None or not current.is_runnable:
                continue  # another worker has it
            current.transition(Status.RUNNING, worker_id=worker_id, lease_expires_at=lease)
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


def execution_finish(
    *,
    execution_id: int,
    worker_id: str,
    to: str,
    error: str = "",
    prompt: str = "",
    input_spec: dict[str, Any] | None = None,
    result: Any = None,
    details: str = "",
) -> bool:
    """Record how a worker's run of an execution ended (`details`: a traceback, logged as
    an error line), if that worker still holds it; False when it was taken away (reaped,
    cancelled by force)."""
    with transaction.atomic():
        current = Execution.objects.held(execution_id)
        if current is None or current.status != Status.RUNNING or current.worker_id != worker_id:
            return False
        if details:
            _log_line(current, "error", bounds.log_line_clean(details.rstrip()))
        if to in (Status.FAILED, Status.CANCELLED):
            steps_abandon(execution=current, error=error or to)
        current.transition(to, error=error, prompt=prompt, input_spec=input_spec, result=result)
    return True


def execution_recover(*, execution_id: int, reason: str, worker_id: str | None = None) -> str:
    """Take a running execution away from a lost (or stopping) worker: cancelled if a cancel
    was asked for, else failed with `reason`, and retried as a new numbered execution while
    the task's max_attempts allows. With `worker_id`, only if that worker still holds it;
    without, only if its lease has expired. Returns what happened ("" for nothing)."""
    with transaction.atomic():
        current = Execution.objects.held(execution_id)
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
        task = current.task  # its row is ours: the transition wrote its status
        if task.latest_execution_id == current.pk and current.number < task.max_attempts:
            retry = execution_enqueue(task=task)
            _log_line(
                current, "warning", f"retrying as attempt {retry.number} of {task.max_attempts}"
            )
            return "retried"
        return "failed"


def executions_reap(*, cancel_grace_seconds: float) -> dict[str, int]:
    """Any worker runs this now and then: executions whose worker died (lease expired) never
    stay running, and a cancel the function ignores is forced after the grace period."""
    now = timezone.now()
    counts: dict[str, int] = {}
    expired = Execution.objects.filter(status=Status.RUNNING, lease_expires_at__lt=now)
    for pk, holder, function in list(
        expired.values_list("pk", "worker_id", "task__function")[:100]
    ):
        outcome = execution_recover(
            execution_id=pk,
            # An external execution's lease is renewed by its runner's reports.
            reason=RUNNER_LOST
            if function == EXTERNAL
            else f"worker lost: {holder or 'a worker'} stopped renewing its lease",
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
        current = Execution.objects.held(execution_id)
        if current is None or current.status != Status.RUNNING:
            return False
        requested = current.cancel_requested_at
        if requested is None or requested >= timezone.now() - timedelta(seconds=grace_seconds):
            return False
        reason = f"cancelled by force: it did not stop within {grace_seconds:g}s"
        steps_abandon(execution=current, error=reason)
        current.transition(Status.CANCELLED, error=reason)
        return True
