"""`manage.py serve` (the embedded default, `make run`) runs executions in-process, with no
Redis: one process serves the pages and runs the worker."""

import pytest

from tasks.models import Execution
from tasks.services import execution_answer
from tasks.states import Status
from tests.factories import make_task
from tests.servers import process_env
from tests.tasks.engine import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _status(pk: int) -> str:
    return Execution.objects.values_list("status", flat=True).get(pk=pk)


def test_serve_runs_executions_and_resumes_them_after_an_answer(start_server) -> None:
    server = start_server("serve", env=process_env(WORKER_POLL_SECONDS="0.1"))
    assert "running in-process" in server.output

    plain = make_task(kwargs={"steps": 2, "delay": 0}).latest_execution
    asking = make_task(kwargs={"steps": 1, "delay": 0, "ask": "Proceed?"}).latest_execution
    wait_for(lambda: _status(plain.pk) == Status.SUCCEEDED, what="the plain task to succeed")
    wait_for(lambda: _status(asking.pk) == Status.WAITING_FOR_INPUT, what="the question")

    execution_answer(execution=asking, answer="yes")
    wait_for(lambda: _status(asking.pk) == Status.SUCCEEDED, what="the answered task")
    assert Execution.objects.get(pk=asking.pk).result == {"steps": 1, "answer": "yes"}


def test_sigterm_stops_serve_and_releases_what_it_was_running(start_server) -> None:
    env = process_env(WORKER_POLL_SECONDS="0.1", WORKER_SHUTDOWN_SECONDS="0")
    server = start_server("serve", env=env)
    execution = make_task(kwargs={"steps": 1, "delay": 120}).latest_execution
    wait_for(lambda: _status(execution.pk) == Status.RUNNING, what="running")
    server.stop()
    assert server.process.returncode == 0, server.output
    execution.refresh_from_db()
    assert (execution.status, execution.error) == (
        Status.FAILED,
        "worker stopped before the execution finished",
    )
