"""Each receiver turns one transition into one event; nothing else lives here."""

from django.dispatch import receiver

from events import types
from events.api import event_emit
from tasks import signals
from tasks.states import Status


def _status_data(from_status: str, to_status: str, execution) -> dict:
    data = {"from": from_status, "to": to_status}
    if to_status == Status.FAILED:
        data["error"] = execution.error
    elif to_status == Status.WAITING_FOR_INPUT:
        data["prompt"] = execution.prompt
    return data


@receiver(signals.task_created)
def emit_task_created(sender, *, task, **kwargs) -> None:
    event_emit(
        type=types.TASK_CREATED, task_id=task.pk, data={"title": task.title, "status": task.status}
    )


@receiver(signals.task_status_changed)
def emit_task_status(sender, *, task, from_status, to_status, execution, **kwargs) -> None:
    event_emit(
        type=types.TASK_STATUS,
        task_id=task.pk,
        execution_id=execution.pk,
        data=_status_data(from_status, to_status, execution),
    )


@receiver(signals.execution_created)
def emit_execution_created(sender, *, execution, **kwargs) -> None:
    event_emit(
        type=types.EXECUTION_CREATED,
        task_id=execution.task_id,
        execution_id=execution.pk,
        data={"number": execution.number, "status": execution.status},
    )


@receiver(signals.execution_status_changed)
def emit_execution_status(sender, *, execution, from_status, to_status, **kwargs) -> None:
    event_emit(
        type=types.EXECUTION_STATUS,
        task_id=execution.task_id,
        execution_id=execution.pk,
        data=_status_data(from_status, to_status, execution),
    )


STEP_EVENT = {
    "running": types.STEP_STARTED,
    "succeeded": types.STEP_COMPLETED,
    "skipped": types.STEP_COMPLETED,
    "failed": types.STEP_FAILED,
}


@receiver(signals.step_status_changed)
def emit_step_event(sender, *, step, from_status, to_status, **kwargs) -> None:
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
    )
