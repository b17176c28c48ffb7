"""The lease and the heartbeat: an execution that runs longer than its lease keeps it; a
worker that stops lets running work finish within its shutdown time."""

import pytest

from events.models import Event
from tasks.models import Execution
from tasks.states import Status
from tests.factories import make_task
from tests.tasks.engine import in_process_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _status(pk: int) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=pk)


def test_the_heartbeat_keeps_a_long_execution_beyond_its_lease() -> None:
    # Three lease lengths of work; the worker's own reaper would fail it without renewals.
    execution = make_task(kwargs={"steps": 3, "delay": 0.6}).latest_execution
    with in_process_worker(lease_seconds=0.6):
        wait_for(lambda: _status(execution.pk) in {"succeeded", "failed"}, what="the end")
    execution.refresh_from_db()
    assert (execution.status, execution.error) == (Status.SUCCEEDED, "")
    assert not Event.objects.filter(type="execution.log", data__message__startswith="retry")


def test_stopping_lets_running_work_finish_within_the_shutdown_time() -> None:
    execution = make_task(kwargs={"steps": 2, "delay": 0.5}).latest_execution
    with in_process_worker(shutdown_seconds=30) as worker:
        wait_for(lambda: _status(execution.pk) == Status.RUNNING, what="running")
        worker.shutdown()  # what SIGTERM does: returns once the execution has finished
        assert _status(execution.pk) == Status.SUCCEEDED
