"""Cancel in each state: pending and waiting at once, running at the next checkpoint or by
force after the grace period; finished executions refuse."""

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution, Step
from tasks.services import execution_answer, execution_cancel
from tasks.states import Status, TransitionNotAllowed
from tests.factories import make_execution, make_task
from tests.tasks import engine
from tests.tasks.engine import events_of, in_process_worker, run_runnable, wait_for

pytestmark = pytest.mark.postgres


def _status(execution: Execution) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=execution.pk)


@pytest.mark.django_db
def test_pending_is_cancelled_at_once_and_never_runs(capsys) -> None:
    execution = make_task(kwargs={"steps": 1, "delay": 0}).latest_execution
    call_command("cancel", str(execution.pk))
    assert capsys.readouterr().out == f"execution {execution.pk} cancelled\n"
    assert _status(execution) == Status.CANCELLED
    assert events_of(execution.pk, "execution.status")[-1].data == {
        "from": "pending",
        "to": "cancelled",
    }
    assert run_runnable() == []
    execution.task.refresh_from_db()
    assert execution.task.status == Status.CANCELLED


@pytest.mark.django_db
def test_waiting_for_input_is_cancelled_at_once_even_when_answered() -> None:
    execution = make_task(function="tests.tasks.engine.two_questions").latest_execution
    run_runnable()
    assert _status(execution) == Status.WAITING_FOR_INPUT
    execution_answer(execution=execution, answer="red")  # answered, not yet resumed
    execution_cancel(execution=execution)
    assert _status(execution) == Status.CANCELLED
    assert run_runnable() == []  # the answer does not bring it back
    # The step that asked was still open: it is closed as failed, "cancelled".
    assert list(Step.objects.filter(execution=execution).values_list("status", "error")) == [
        ("failed", "cancelled")
    ]


@pytest.mark.django_db(transaction=True)
def test_running_stops_at_its_next_checkpoint() -> None:
    execution = make_task(kwargs={"steps": 2, "delay": 30}).latest_execution
    with in_process_worker():
        # The step's "working" log line comes right after step.started: wait for it too,
        # so that "cancel requested" is surely the last line (on PostgreSQL they raced).
        wait_for(
            lambda: len(events_of(execution.pk, "execution.log")) >= 1,
            what="the first step's log line",
        )
        returned = execution_cancel(execution=execution)
        assert returned.status == Status.RUNNING and returned.cancel_requested_at is not None
        wait_for(lambda: _status(execution) == Status.CANCELLED, what="cancelled")
    statuses = [e.data["to"] for e in events_of(execution.pk, "execution.status")]
    assert statuses == ["running", "cancelled"]
    assert events_of(execution.pk, "execution.log")[-1].data == {
        "level": "warning",
        "message": "cancel requested",
    }
    assert list(Step.objects.filter(execution=execution).values_list("index", "status")) == [
        (0, "failed")
    ]
    assert events_of(execution.pk, "step.failed")[0].data["error"] == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_running_that_ignores_checkpoints_is_cancelled_by_force_after_the_grace() -> None:
    engine.RELEASE.clear()
    execution = make_task(function="tests.tasks.engine.stubborn").latest_execution
    try:
        with in_process_worker(cancel_grace_seconds=0.2, lease_seconds=1.5):
            wait_for(lambda: events_of(execution.pk, "step.started"), what="the step")
            execution_cancel(execution=execution)
            wait_for(lambda: _status(execution) == Status.CANCELLED, what="forced cancel")
            engine.RELEASE.set()  # the function returns late; its result must be dropped
    finally:
        engine.RELEASE.set()
    execution.refresh_from_db()
    assert execution.status == Status.CANCELLED
    assert execution.error == "cancelled by force: it did not stop within 0.2s"
    assert execution.result is None
    assert [e.data["to"] for e in events_of(execution.pk, "execution.status")] == [
        "running",
        "cancelled",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
def test_finished_executions_refuse_and_nothing_changes(status) -> None:
    execution = make_execution(status)
    before = Event.objects.count()
    with pytest.raises(
        TransitionNotAllowed, match=f"execution {execution.pk} is {status}; it cannot be cancelled"
    ):
        execution_cancel(execution=execution)
    assert _status(execution) == status
    assert Event.objects.count() == before


@pytest.mark.django_db
def test_a_second_cancel_of_a_running_execution_is_refused() -> None:
    execution = make_execution(Status.RUNNING)
    execution_cancel(execution=execution)
    requested = Execution.objects.get(pk=execution.pk).cancel_requested_at
    before = Event.objects.count()
    with pytest.raises(TransitionNotAllowed, match="is already being cancelled"):
        execution_cancel(execution=execution)
    assert Execution.objects.get(pk=execution.pk).cancel_requested_at == requested
    assert Event.objects.count() == before


@pytest.mark.django_db
def test_cancel_command_refusals() -> None:
    with pytest.raises(CommandError, match="execution 424242 does not exist"):
        call_command("cancel", "424242")
    done = make_execution(Status.SUCCEEDED)
    with pytest.raises(CommandError, match=f"execution {done.pk} is succeeded"):
        call_command("cancel", str(done.pk))
