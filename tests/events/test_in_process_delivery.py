"""The embedded default: the worker runs inside the server process on the in-memory
layer. Its commits reach the streams through the hub's local listener at once, not on
the safety tick (set to a minute here, so the tick cannot be what delivers them)."""

import pytest

from events.models import Event
from tests.factories import make_task
from tests.servers import process_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_events_committed_in_the_server_process_arrive_with_the_in_memory_layer(
    start_server, login, open_streams
) -> None:
    env = process_env(EVENTS_SAFETY_TICK_SECONDS="60", WORKER_POLL_SECONDS="0.1")
    server = start_server("serve", env=env)
    assert "REDIS_URL" not in server.env
    stream = open_streams(server.url, cookies=login(server))
    stream.wait(lambda s: s.frames)

    task = make_task(title="local", kwargs={"steps": 2, "delay": 0})
    execution = task.latest_execution
    stream.wait(
        lambda s: any(
            e["type"] == "task.status" and e["data"]["to"] == "succeeded" for e in s.events()
        ),
        timeout=30,  # well under the 60 s tick
    )
    log = [e.as_dict() for e in Event.objects.filter(task_id=task.pk).order_by("id")]
    assert [e for e in stream.events() if e["task_id"] == task.pk] == log
    assert {"step.started", "step.completed"} <= {e["type"] for e in log}
    assert log[-1]["execution_id"] == execution.pk
