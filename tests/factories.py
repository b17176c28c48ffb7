"""Small helpers that build domain objects through the real services."""

from tasks.models import Execution, Step, Task
from tasks.services import task_create
from tasks.states import Status


def make_task(title: str = "t", **kwargs) -> Task:
    return task_create(title=title, **kwargs)


def make_execution(status: str = Status.PENDING, **kwargs) -> Execution:
    """A task's first execution, moved through allowed transitions to `status`."""
    execution = make_task(**kwargs).latest_execution
    return execution_move(execution, status)


def execution_move(execution: Execution, status: str, *, prompt: str = "q?") -> Execution:
    """`execution` moved from pending through allowed transitions to `status`."""
    path = {
        Status.PENDING: [],
        Status.RUNNING: [Status.RUNNING],
        Status.WAITING_FOR_INPUT: [Status.RUNNING, Status.WAITING_FOR_INPUT],
        Status.SUCCEEDED: [Status.RUNNING, Status.SUCCEEDED],
        Status.FAILED: [Status.RUNNING, Status.FAILED],
        Status.CANCELLED: [Status.CANCELLED],
    }[status]
    for to in path:
        execution.transition(to, prompt=prompt if to == Status.WAITING_FOR_INPUT else "")
    return execution


def make_step(execution: Execution, index: int = 0, name: str = "fetch") -> Step:
    return Step.objects.create(execution=execution, index=index, name=name)
