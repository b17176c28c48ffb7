"""`kill -9` of a worker mid-execution: the execution never stays running. Another worker's
reaper fails it ("worker lost") or retries it per the task's max_attempts, as events."""

import pytest

from events.models import Event
from tasks.models import Execution, Step
from tasks.states import Status
from tests.conftest import REDIS_URL
from tests.factories import make_task
from tests.servers import WorkerProcess, process_env
from tests.tasks.engine import events_of, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEASE = ["--lease", "1"]  # short, so that the test waits about a second for the reaper


def _env(prefix: str) -> dict[str, str]:
    return process_env(
        REDIS_URL=REDIS_URL,
        CHANNEL_LAYER_PREFIX=prefix,
        WORKER_POLL_SECONDS="0.05",
        WORKER_SHUTDOWN_SECONDS="0",
    )


def _killed_mid_step(env: dict[str, str], execution: Execution) -> str:
    victim = WorkerProcess(env=env, args=LEASE).start()
    try:
        wait_for(lambda: events_of(execution.pk, "step.started"), what="the step to start")
    finally:
        victim.kill()
    assert victim.process.returncode == -9
    return Execution.objects.get(pk=execution.pk).worker_id


def test_a_killed_workers_execution_fails_as_worker_lost(channel_layer_prefix) -> None:
    env = _env(channel_layer_prefix)
    execution = make_task(kwargs={"steps": 1, "delay": 120}).latest_execution
    lost = _killed_mid_step(env, execution)
    assert Execution.objects.get(pk=execution.pk).status == Status.RUNNING

    rescuer = WorkerProcess(env=env, args=LEASE).start()
    try:
        wait_for(
            lambda: Execution.objects.filter(pk=execution.pk).exclude(status="running").exists(),
            what="the execution to leave running",
        )
    finally:
        assert rescuer.stop() == 0

    execution.refresh_from_db()
    reason = f"worker lost: {lost} stopped renewing its lease"
    assert (execution.status, execution.error) == (Status.FAILED, reason)
    assert events_of(execution.pk, "execution.status")[-1].data == {
        "from": "running",
        "to": "failed",
        "error": reason,
    }
    step = Step.objects.get(execution=execution)
    assert (step.status, step.error) == ("failed", reason)
    assert events_of(execution.pk, "step.failed")[0].data["error"] == reason
    assert Execution.objects.filter(task=execution.task).count() == 1  # max_attempts=1


def test_a_killed_workers_execution_is_retried_while_attempts_remain(channel_layer_prefix) -> None:
    env = _env(channel_layer_prefix)
    task = make_task(kwargs={"steps": 1, "delay": 120}, max_attempts=2)
    first = task.latest_execution
    _killed_mid_step(env, first)

    rescuer = WorkerProcess(env=env, args=LEASE).start()
    try:
        second = wait_for(
            lambda: Execution.objects.filter(task=task, number=2, status="running").first(),
            what="attempt 2 to run",
        )
        wait_for(lambda: events_of(second.pk, "step.started"), what="attempt 2's step")
    finally:
        # SIGTERM with WORKER_SHUTDOWN_SECONDS=0: the worker releases attempt 2 and exits.
        assert rescuer.stop() == 0
    assert "stopped" in rescuer.output

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == Status.FAILED and first.error.startswith("worker lost: ")
    assert events_of(first.pk, "execution.log")[-1].data == {
        "level": "warning",
        "message": "retrying as attempt 2 of 2",
    }
    created = Event.objects.get(type="execution.created", execution_id=second.pk)
    assert created.data == {"number": 2, "status": "pending"}
    # Released on shutdown, and no third attempt: max_attempts is 2.
    assert (second.status, second.error) == (
        Status.FAILED,
        "worker stopped before the execution finished",
    )
    assert task.executions.count() == 2
