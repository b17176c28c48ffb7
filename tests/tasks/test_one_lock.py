"""Every write takes one row lock, in one place: the execution's row, held once per
transaction (on SQLite, whose IMMEDIATE transactions serialise writers, none at all)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks import services
from tasks.models import Execution, Step
from tasks.states import Status, StepStatus
from tests.factories import make_execution, make_step

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def locks_taken(write: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        write()
    return [q["sql"] for q in queries if "FOR UPDATE" in q["sql"].upper()]


def one_lock() -> int:
    return 1 if connection.features.has_select_for_update else 0


def test_each_service_holds_one_row_once() -> None:
    waiting = make_execution(Status.WAITING_FOR_INPUT)
    step = make_step(waiting)
    step.transition(StepStatus.RUNNING)
    running = make_execution(Status.RUNNING)
    failed = make_execution(Status.FAILED)

    writes: dict[str, Callable[[], Any]] = {
        "cancel with a running step": lambda: services.execution_cancel(execution=waiting),
        "progress": lambda: services.execution_progress(execution=running, done=1, total=2),
        "log": lambda: services.execution_log(execution=running, level="info", message="m"),
        "retry": lambda: services.task_retry(task=failed.task),
        "step start": lambda: services.step_start(execution=running, index=0, name="s"),
    }
    for name, write in writes.items():
        assert len(locks_taken(write)) == one_lock(), name

    assert Step.objects.get(pk=step.pk).status == StepStatus.FAILED


def test_a_transition_on_a_held_row_takes_no_second_lock() -> None:
    execution = make_execution(Status.PENDING)
    claimed = locks_taken(
        lambda: services.executions_claim(worker_id="w", limit=5, lease_seconds=30)
    )
    assert len(claimed) == one_lock()  # one claim, one transaction, one lock
    assert Execution.objects.get(pk=execution.pk).status == Status.RUNNING
    finished = locks_taken(
        lambda: services.execution_finish(
            execution_id=execution.pk, worker_id="w", to=Status.FAILED, error="x", details="tb"
        )
    )
    assert len(finished) == one_lock()
    assert Execution.objects.get(pk=execution.pk).status == Status.FAILED


def test_a_transition_on_an_instance_it_does_not_hold_holds_it_once() -> None:
    execution = make_execution(Status.PENDING)
    assert len(locks_taken(lambda: execution.transition(Status.RUNNING))) == one_lock()
    assert execution.status == Status.RUNNING
