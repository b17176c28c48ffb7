"""Retry: a new numbered execution, only when the task's latest execution failed or was
cancelled."""

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution
from tasks.services import task_retry
from tasks.states import Status, TransitionNotAllowed
from tests.factories import make_execution, make_task
from tests.tasks.engine import events_of, run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_retry_of_a_failed_task_runs_a_new_numbered_execution(capsys) -> None:
    task = make_task(kwargs={"steps": 1, "delay": 0, "fail_at": 0})
    run_runnable()
    task.refresh_from_db()
    assert task.status == Status.FAILED
    before = Event.objects.order_by("-id").first().id

    call_command("retry", str(task.pk))

    second = Execution.objects.get(task=task, number=2)
    assert capsys.readouterr().out == f"{second.pk}\n"
    task.refresh_from_db()
    assert (task.status, task.latest_execution_id) == (Status.PENDING, second.pk)
    new = list(Event.objects.filter(id__gt=before).order_by("id"))
    assert [(e.type, e.data) for e in new] == [
        ("execution.created", {"number": 2, "status": "pending"}),
        ("task.status", {"from": "failed", "to": "pending"}),
    ]
    run_runnable()  # the same kwargs, so it fails again: the first attempt is untouched
    assert list(task.executions.values_list("number", "status")) == [
        (1, "failed"),
        (2, "failed"),
    ]
    assert events_of(second.pk, "step.failed")


def test_retry_of_a_cancelled_task() -> None:
    execution = make_execution(Status.CANCELLED, kwargs={"steps": 1, "delay": 0})
    retried = task_retry(task=execution.task)
    assert (retried.number, retried.status) == (2, Status.PENDING)
    assert run_runnable() == [(retried.pk, Status.SUCCEEDED)]


@pytest.mark.parametrize(
    "status", [Status.PENDING, Status.RUNNING, Status.WAITING_FOR_INPUT, Status.SUCCEEDED]
)
def test_retry_is_refused_unless_the_latest_execution_failed_or_was_cancelled(status) -> None:
    execution = make_execution(status)
    before = Event.objects.count()
    with pytest.raises(
        TransitionNotAllowed,
        match=f"task {execution.task_id} is {status}; only a failed or cancelled task",
    ):
        task_retry(task=execution.task)
    assert Execution.objects.filter(task=execution.task).count() == 1
    assert Event.objects.count() == before


def test_retry_command_refusals() -> None:
    with pytest.raises(CommandError, match="task 31337 does not exist"):
        call_command("retry", "31337")
    with pytest.raises(CommandError, match="task id must be a whole number, got '-1'"):
        call_command("retry", "-1")
    running = make_execution(Status.RUNNING)
    with pytest.raises(CommandError, match=f"task {running.task_id} is running"):
        call_command("retry", str(running.task_id))


def test_the_context_knows_which_attempt_it_is() -> None:
    from tasks.services import execution_answer

    cancelled = make_execution(Status.CANCELLED, function="tests.tasks.engine.two_questions")
    retried = task_retry(task=cancelled.task)
    for answer in ("red", "L"):
        run_runnable()
        retried.refresh_from_db()
        execution_answer(execution=retried, answer=answer)
    run_runnable()
    retried.refresh_from_db()
    assert retried.result == {"colour": "red", "size": "L", "attempt": 2}
