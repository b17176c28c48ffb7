"""Each receiver turns one transition into one event; nothing else lives here."""

from typing import Any

from django.conf import settings
from django.dispatch import receiver

from events.api import event_emit
from tasks import event_types as types
from tasks import signals
from tasks.access import task_audience, task_audience_by_id
from tasks.models import Execution, Step, Task
from tasks.states import FINISHED, Status


def _audience(execution: Execution) -> str:
    """Who receives the execution's events: its task's creator and group."""
    if Execution.task.is_cached(execution):
        return task_audience(execution.task)
    return task_audience_by_id(execution.task_id)


def _status_data(from_status: str, to_status: str, execution: Execution) -> dict[str, str]:
    data = {"from": from_status, "to": to_status}
    if to_status == Status.FAILED:
        data["error"] = execution.error
    elif to_status == Status.WAITING_FOR_INPUT:
        data["prompt"] = execution.prompt
    return data


@receiver(signals.task_created)
def emit_task_created(sender: type[Task], *, task: Task, **kwargs: Any) -> None:
    event_emit(
        type=types.TASK_CREATED,
        task_id=task.pk,
        data={"title": task.title, "status": task.status},
        audience=task_audience(task),
    )


@receiver(signals.task_status_changed)
def emit_task_status(
    sender: type[Task],
    *,
    task: Task,
    from_status: str,
    to_status: str,
    execution: Execution,
    **kwargs: Any,
) -> None:
    event_emit(
        type=types.TASK_STATUS,
        task_id=task.pk,
        execution_id=execution.pk,
        data=_status_data(from_status, to_status, execution),
        audience=task_audience(task),
    )


@receiver(signals.execution_created)
def emit_execution_created(sender: type[Execution], *, execution: Execution, **kwargs: Any) -> None:
    event_emit(
        type=types.EXECUTION_CREATED,
        task_id=execution.task_id,
        execution_id=execution.pk,
        data={"number": execution.number, "status": execution.status},
        audience=_audience(execution),
    )


@receiver(signals.execution_status_changed)
def emit_execution_status(
    sender: type[Execution],
    *,
    execution: Execution,
    from_status: str,
    to_status: str,
    **kwargs: Any,
) -> None:
    audience = _audience(execution)
    dropped = execution.log_lines - settings.TASK_LOG_LINES_MAX
    if to_status in FINISHED and dropped > 0:
        # The one line saying how many log lines went past the bound (TASK_LOG_LINES_MAX).
        event_emit(
            type=types.EXECUTION_LOG,
            task_id=execution.task_id,
            execution_id=execution.pk,
            data={
                "level": "warning",
                "message": f"{dropped} log lines dropped: the most kept per attempt is "
                f"{settings.TASK_LOG_LINES_MAX} (TASK_LOG_LINES_MAX)",
            },
            audience=audience,
        )
    event_emit(
        type=types.EXECUTION_STATUS,
        task_id=execution.task_id,
        execution_id=execution.pk,
        data=_status_data(from_status, to_status, execution),
        audience=audience,
    )


STEP_EVENT = {
    "running": types.STEP_STARTED,
    "succeeded": types.STEP_COMPLETED,
    "skipped": types.STEP_COMPLETED,
    "failed": types.STEP_FAILED,
}


@receiver(signals.step_status_changed)
def emit_step_event(
    sender: type[Step], *, step: Step, from_status: str, to_status: str, **kwargs: Any
) -> None:
    execution = step.execution
    event_emit(
        type=STEP_EVENT[to_status],
        task_id=execution.task_id,
        execution_id=execution.pk,
        data={
            "step_id": step.pk,
            "index": step.index,
            "name": step.name,
            "status": step.status,
            "duration_ms": step.duration_ms if to_status != "running" else None,
            "error": step.error,
        },
        audience=_audience(execution),
    )
