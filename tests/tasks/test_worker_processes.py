"""Two `manage.py worker` processes against one database: every execution runs exactly once
(PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED; SQLite: the conditional UPDATE)."""

import re
from collections import Counter

import pytest

from events.models import Event
from tasks.models import Execution, Step
from tasks.states import Status
from tests.conftest import REDIS_URL
from tests.factories import make_task
from tests.servers import WorkerProcess, process_env
from tests.tasks.engine import wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EXECUTIONS = 50


def test_two_workers_run_fifty_executions_each_exactly_once(channel_layer_prefix) -> None:
    env = process_env(
        REDIS_URL=REDIS_URL, CHANNEL_LAYER_PREFIX=channel_layer_prefix, WORKER_POLL_SECONDS="0.05"
    )
    workers = [WorkerProcess(env=env, args=["--concurrency", "4"]).start() for _ in range(2)]
    try:
        # Created while both workers poll, so that they compete for every row.
        for i in range(EXECUTIONS):
            make_task(f"job {i}", kwargs={"steps": 1, "delay": 0})
        wait_for(
            lambda: Execution.objects.filter(status=Status.SUCCEEDED).count() == EXECUTIONS,
            timeout=120,
            what=f"{EXECUTIONS} succeeded executions",
        )
    finally:
        codes = [worker.stop() for worker in workers]
    output = "".join(worker.output for worker in workers)
    assert codes == [0, 0], output
    assert Execution.objects.count() == EXECUTIONS
    assert set(Execution.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}

    started = Counter(
        Event.objects.filter(type="execution.status", data__to="running").values_list(
            "execution_id", flat=True
        )
    )
    assert len(started) == EXECUTIONS
    assert set(started.values()) == {1}, "an execution was started twice"
    steps = Counter(Step.objects.values_list("execution_id", flat=True))
    assert len(steps) == EXECUTIONS and set(steps.values()) == {1}

    ids = {re.search(r"Worker (\S+) ready", w.output).group(1) for w in workers}
    assert set(Execution.objects.values_list("worker_id", flat=True)) <= ids
    assert "Traceback" not in output
