"""A plain exception fails the current step and the execution with the error text."""

import pytest

from tasks.models import Step
from tasks.services import execution_answer
from tasks.states import Status
from tests.factories import make_task
from tests.tasks.engine import events_of, run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_fail_at_fails_that_step_and_the_execution_and_runs_no_later_step() -> None:
    task = make_task(kwargs={"steps": 3, "delay": 0, "fail_at": 1})
    execution = task.latest_execution

    assert run_runnable() == [(execution.pk, Status.FAILED)]

    execution.refresh_from_db()
    error = "RuntimeError: step 2 of 3 failed (fail_at=1)"
    assert execution.error == error
    steps = list(Step.objects.filter(execution=execution).values_list("index", "status", "error"))
    assert steps == [(0, "succeeded", ""), (1, "failed", error)]
    failed = events_of(execution.pk, "step.failed")
    assert len(failed) == 1
    assert failed[0].data["index"] == 1
    assert failed[0].data["name"] == "step 2 of 3"
    assert failed[0].data["status"] == "failed"
    assert failed[0].data["error"] == error
    assert isinstance(failed[0].data["duration_ms"], int)
    last = events_of(execution.pk, "execution.status")[-1]
    assert last.data == {"from": "running", "to": "failed", "error": error}
    # The traceback is kept as an error log line for the person who debugs it.
    errors = [e for e in events_of(execution.pk, "execution.log") if e.data["level"] == "error"]
    assert "Traceback" in errors[0].data["message"]
    assert "fail_at=1" in errors[0].data["message"]
    task.refresh_from_db()
    assert task.status == Status.FAILED


def test_an_exception_outside_any_step_fails_the_execution() -> None:
    execution = make_task(function="tests.tasks.engine.crash_outside_steps").latest_execution
    run_runnable()
    execution.refresh_from_db()
    assert (execution.status, execution.error) == (Status.FAILED, "KeyError: 'missing'")
    assert not Step.objects.filter(execution=execution).exists()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"steps": 2, "fail_at": 2}, "fail_at must be a step index from 0 to 1, got 2"),
        ({"steps": -1}, "steps must be a whole number of at least 0, got -1"),
        ({"delay": "soon"}, "delay must be a number of seconds of at least 0, got 'soon'"),
    ],
)
def test_pipeline_refuses_bad_arguments_by_failing(kwargs, error) -> None:
    execution = make_task(kwargs=kwargs).latest_execution
    run_runnable()
    execution.refresh_from_db()
    assert (execution.status, execution.error) == (Status.FAILED, f"ValueError: {error}")


def test_a_task_whose_function_vanished_fails_with_the_reason(settings) -> None:
    settings.TASK_FUNCTIONS = [*settings.TASK_FUNCTIONS, "tests.tasks.engine.gone"]
    task = make_task()
    type(task).objects.filter(pk=task.pk).update(function="tests.tasks.engine.gone")
    run_runnable()
    execution = task.latest_execution
    execution.refresh_from_db()
    assert execution.status == Status.FAILED
    assert "unknown function 'tests.tasks.engine.gone'" in execution.error


def test_a_step_failure_the_function_catches_does_not_fail_the_execution() -> None:
    execution = make_task(function="tests.tasks.engine.forgiving").latest_execution
    run_runnable()
    execution.refresh_from_db()
    assert execution.status == Status.WAITING_FOR_INPUT
    execution_answer(execution=execution, answer="yes")
    assert run_runnable() == [(execution.pk, Status.SUCCEEDED)]
    assert list(Step.objects.filter(execution=execution).values_list("status", "error")) == [
        ("failed", "OSError: disk hiccup")
    ]
    assert len(events_of(execution.pk, "step.failed")) == 1


def test_sys_exit_in_a_task_fails_it() -> None:
    execution = make_task(function="tests.tasks.engine.exits").latest_execution
    assert run_runnable() == [(execution.pk, Status.FAILED)]
    execution.refresh_from_db()
    assert execution.error == "SystemExit: 3"
