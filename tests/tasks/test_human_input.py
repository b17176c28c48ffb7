"""ask(): running -> waiting_for_input (worker slot freed) -> answer -> running -> finished."""

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution, Step
from tasks.services import execution_answer
from tasks.states import Status, TaskInputError, TransitionNotAllowed
from tests.factories import make_execution, make_task
from tests.tasks.engine import events_of, in_process_worker, run_runnable, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_round_trip_waits_frees_the_slot_and_resumes_without_repeating_steps() -> None:
    task = make_task(kwargs={"steps": 2, "delay": 0, "ask": "Ship it?"})
    execution = task.latest_execution

    assert run_runnable() == [(execution.pk, Status.WAITING_FOR_INPUT)]
    execution.refresh_from_db()
    assert execution.status == Status.WAITING_FOR_INPUT
    assert execution.prompt == "Ship it?"
    assert execution.lease_expires_at is None  # no worker holds it while a person thinks
    waiting = events_of(execution.pk, "execution.status")[-1]
    assert waiting.data == {"from": "running", "to": "waiting_for_input", "prompt": "Ship it?"}
    assert run_runnable() == []  # not runnable until answered

    execution_answer(execution=execution, answer="yes, ship")
    assert run_runnable() == [(execution.pk, Status.SUCCEEDED)]

    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert execution.result == {"steps": 2, "answer": "yes, ship"}
    statuses = [(e.data["from"], e.data["to"]) for e in events_of(execution.pk, "execution.status")]
    assert statuses == [
        ("pending", "running"),
        ("running", "waiting_for_input"),
        ("waiting_for_input", "running"),
        ("running", "succeeded"),
    ]
    # The re-run skipped the steps done before the question: each started and completed once.
    assert len(events_of(execution.pk, "step.started")) == 2
    assert len(events_of(execution.pk, "step.completed")) == 2
    assert list(Step.objects.filter(execution=execution).values_list("status", flat=True)) == [
        "succeeded",
        "succeeded",
    ]
    assert execution.progress_done == 2 and execution.progress_total == 2
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED


def test_several_questions_and_a_question_inside_a_step() -> None:
    execution = make_task(function="tests.tasks.engine.two_questions").latest_execution
    run_runnable()
    execution.refresh_from_db()
    assert (execution.status, execution.prompt) == (Status.WAITING_FOR_INPUT, "Colour?")
    execution_answer(execution=execution, answer="red")
    run_runnable()
    execution.refresh_from_db()
    assert (execution.status, execution.prompt) == (Status.WAITING_FOR_INPUT, "Size?")
    execution_answer(execution=execution, answer="L")
    run_runnable()
    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert execution.result == {"colour": "red", "size": "L", "attempt": 1}
    assert execution.answers == [
        {"prompt": "Colour?", "answer": "red"},
        {"prompt": "Size?", "answer": "L"},
    ]
    # The step that asked stayed open while waiting and completed once, after the answer.
    assert [e.type for e in events_of(execution.pk, "step.started", "step.completed")] == [
        "step.started",
        "step.completed",
    ]


@pytest.mark.django_db(transaction=True)
def test_in_process_worker_resumes_on_answer() -> None:
    execution = make_task(kwargs={"steps": 1, "delay": 0, "ask": "Go?"}).latest_execution
    with in_process_worker(poll_seconds=0.5) as worker:
        wait_for(
            lambda: Execution.objects.filter(pk=execution.pk, status="waiting_for_input").exists(),
            what="waiting_for_input",
        )
        wait_for(lambda: not worker._active_ids(), what="the slot to be freed")
        call_command("answer", str(execution.pk), "go")
        wait_for(
            lambda: Execution.objects.filter(pk=execution.pk, status="succeeded").exists(),
            what="succeeded",
        )


REFUSED_STATES = [Status.PENDING, Status.RUNNING, Status.SUCCEEDED, Status.FAILED, "cancelled"]


@pytest.mark.parametrize("status", REFUSED_STATES)
def test_answer_is_refused_unless_waiting(status) -> None:
    execution = make_execution(status)
    before = Event.objects.count()
    with pytest.raises(TransitionNotAllowed, match=f"execution {execution.pk} is {status}; only"):
        execution_answer(execution=execution, answer="yes")
    execution.refresh_from_db()
    assert (execution.status, execution.answer, execution.answers) == (status, "", [])
    assert Event.objects.count() == before


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("", "the answer must not be empty"),
        ("  \n", "the answer must not be empty"),
        ("x" * 10_001, "the answer is 10001 characters long; the most is 10000"),
    ],
)
def test_empty_or_huge_answers_are_refused(answer, message) -> None:
    execution = make_execution(Status.WAITING_FOR_INPUT)
    before = Event.objects.count()
    with pytest.raises(TaskInputError, match=message):
        execution_answer(execution=execution, answer=answer)
    execution.refresh_from_db()
    assert execution.answer == ""
    assert Event.objects.count() == before


def test_a_second_answer_is_refused() -> None:
    execution = make_execution(Status.WAITING_FOR_INPUT)
    execution_answer(execution=execution, answer="first")
    before = Event.objects.count()
    with pytest.raises(TransitionNotAllowed, match="has already been answered"):
        execution_answer(execution=execution, answer="second")
    execution.refresh_from_db()
    assert execution.answer == "first"
    assert Event.objects.count() == before


def test_answer_command_refusals() -> None:
    with pytest.raises(CommandError, match="execution 999999 does not exist"):
        call_command("answer", "999999", "yes")
    with pytest.raises(CommandError, match="execution id must be a whole number, got 'abc'"):
        call_command("answer", "abc", "yes")
