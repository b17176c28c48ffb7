"""The Django Tasks backend: `some_task.enqueue(...)` creates a tracked Task and Execution."""

from __future__ import annotations

from typing import Any

from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task, TaskError, TaskResult, TaskResultStatus
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued

from tasks.models import Execution
from tasks.registry import task_function_resolve
from tasks.services import task_create
from tasks.states import Status, TaskInputError

RESULT_STATUS: dict[str, TaskResultStatus] = {
    Status.PENDING: TaskResultStatus.READY,
    Status.RUNNING: TaskResultStatus.RUNNING,
    Status.WAITING_FOR_INPUT: TaskResultStatus.RUNNING,
    Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Status.FAILED: TaskResultStatus.FAILED,
    Status.CANCELLED: TaskResultStatus.FAILED,
}


class DatabaseBackend(BaseTaskBackend):
    """Each enqueue is a tracked Task with its first Execution (result id = execution id);
    workers (tasks.engine.worker) run them; get_result answers from the Execution row."""

    supports_get_result = True
    supports_defer = False
    supports_async_task = False
    supports_priority = False

    def enqueue[**P, R](
        self, task: Task[P, R], args: list[Any], kwargs: dict[str, Any]
    ) -> TaskResult[P, R]:
        self.validate_task(task)
        try:
            created = task_create(
                title=task.name, function=task.module_path, args=list(args), kwargs=dict(kwargs)
            )
        except TaskInputError as exc:
            raise InvalidTask(str(exc)) from None
        assert created.latest_execution is not None  # task_create enqueues the first one
        result = execution_result(created.latest_execution, task=task, backend=self.alias)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        try:
            execution = Execution.objects.select_related("task").get(pk=int(result_id))
        except (ValueError, Execution.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        task = task_function_resolve(execution.task.function)
        return execution_result(execution, task=task, backend=self.alias)


def execution_result[**P, R](
    execution: Execution, *, task: Task[P, R], backend: str
) -> TaskResult[P, R]:
    """Django's TaskResult view of one of our executions."""
    errors: list[TaskError] = []
    if execution.status in (Status.FAILED, Status.CANCELLED) and execution.error:
        errors.append(
            TaskError(exception_class_path="builtins.Exception", traceback=execution.error)
        )
    result = TaskResult(
        task=task,
        id=str(execution.pk),
        status=RESULT_STATUS[execution.status],
        enqueued_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        last_attempted_at=execution.started_at,
        args=list(execution.task.args),
        kwargs=dict(execution.task.kwargs),
        backend=backend,
        errors=errors,
        worker_ids=[execution.worker_id] if execution.worker_id else [],
    )
    if execution.status == Status.SUCCEEDED:
        object.__setattr__(result, "_return_value", execution.result)
    return result
