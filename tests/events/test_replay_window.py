"""Past the replay window (EVENTS_REPLAY_LIMIT, or pruned events) a resume gets `reset`
first and then goes on live; within it, exactly the missed events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.api import event_emit
from events.models import Event
from tests.servers import process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def emit(n: int) -> list[int]:
    return [
        event_emit(type="execution.log", task_id=1, execution_id=1, data={"message": str(i)}).pk
        for i in range(n)
    ]


def test_more_missing_than_the_replay_limit_gets_reset_then_live(
    start_server, login, open_streams
) -> None:
    server = start_server("daphne", env=process_env(EVENTS_REPLAY_LIMIT="5"))
    cookies = login(server)
    ids = emit(8)
    within = open_streams(server.url, cookies=cookies, params={"last_event_id": str(ids[2])})
    within.wait(within.has_ids(ids[3:]))
    assert within.ids() == ids[3:]
    assert not [f for f in within.frames if f.event == "reset"]

    beyond = open_streams(server.url, cookies=cookies, params={"last_event_id": str(ids[0])})
    beyond.wait(lambda s: any(f.data for f in s.frames))
    first = next(f for f in beyond.frames if f.data)
    assert first.event == "reset"
    assert first.json()["reason"] == "replay window exceeded"
    assert first.id == str(ids[-1])  # a reconnect from here goes on without a gap

    # A filter that leaves few enough missing events is replayed, not reset.
    event_emit(type="step.started", task_id=1, execution_id=1, data={})
    steps = open_streams(
        server.url, cookies=cookies, params={"last_event_id": str(ids[0]), "type": "step.*"}
    )
    step_ids = list(Event.objects.filter(type="step.started").values_list("id", flat=True))
    steps.wait(steps.has_ids(step_ids))
    assert not [f for f in steps.frames if f.event == "reset"]


def test_resume_older_than_the_log_or_the_retention_window_gets_reset(
    start_server, login, open_streams
) -> None:
    server = start_server("uvicorn")
    cookies = login(server)
    ids = emit(4)
    Event.objects.filter(id__lte=ids[1]).delete()  # pruned
    pruned = open_streams(server.url, cookies=cookies, params={"last_event_id": str(ids[0] - 1)})
    pruned.wait(lambda s: any(f.data for f in s.frames))
    assert next(f for f in pruned.frames if f.data).json()["reason"] == "older than the log"

    Event.objects.filter(id=ids[2]).update(at=timezone.now() - timedelta(days=30))
    old = open_streams(server.url, cookies=cookies, params={"last_event_id": str(ids[1])})
    old.wait(lambda s: any(f.data for f in s.frames))
    first = next(f for f in old.frames if f.data)
    assert first.json()["reason"] == "older than the retention window"
