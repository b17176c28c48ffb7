"""Django's own Tasks API against our backend: enqueue, get_result, refresh, return_value."""

import pytest
from django.tasks import TaskResultStatus, default_task_backend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch

from tasks.examples import pipeline
from tasks.models import Execution, Task
from tests.tasks.engine import add, run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_enqueue_creates_a_tracked_task_and_get_result_answers_from_the_models() -> None:
    result = pipeline.enqueue(steps=1, delay=0)

    execution = Execution.objects.select_related("task").get(pk=int(result.id))
    assert execution.task.function == "tasks.examples.pipeline"
    assert execution.task.kwargs == {"steps": 1, "delay": 0}
    assert result.status == TaskResultStatus.READY
    assert result.backend == "default"
    assert not result.is_finished

    run_runnable(worker_id="w-api")

    fetched = pipeline.get_result(result.id)
    assert fetched.status == TaskResultStatus.SUCCESSFUL
    assert fetched.return_value == {"steps": 1}
    assert fetched.worker_ids == ["w-api"]
    assert fetched.started_at is not None and fetched.finished_at is not None
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"steps": 1}


def test_a_plain_task_without_context_runs_too() -> None:
    result = add.enqueue(2, 3)
    assert Task.objects.get().args == [2, 3]
    run_runnable()
    assert add.get_result(result.id).return_value == 5


def test_a_failed_execution_is_a_failed_result_with_the_error() -> None:
    result = pipeline.enqueue(steps=1, delay=0, fail_at=0)
    run_runnable()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert "step 1 of 1 failed" in result.errors[0].traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018


def test_bad_arguments_and_unknown_results_are_refused() -> None:
    with pytest.raises(InvalidTask, match="unexpected keyword argument 'colour'"):
        pipeline.enqueue(colour="red")
    assert not Task.objects.exists()
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("999999")
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("not-a-number")
    result = add.enqueue(1, 1)
    with pytest.raises(TaskResultMismatch):
        pipeline.get_result(result.id)
