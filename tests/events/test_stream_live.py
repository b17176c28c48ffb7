"""Live delivery over a real socket: frames, headers, JSON contract, in id order."""

import pytest

from events.models import Event
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def _log(**filters) -> list[dict]:
    return [e.as_dict() for e in Event.objects.filter(**filters).order_by("id")]


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_committed_events_arrive_live_as_contract_json(
    start_server, redis_env, login, open_streams, kind
) -> None:
    server = start_server(kind, env=redis_env())
    cookies = login(server)
    before = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    stream = open_streams(server.url, cookies=cookies)
    assert stream.wait_status() == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    stream.wait(lambda s: len(s.frames) >= 1)
    assert stream.frames[0].retry is not None  # `retry:` comes first

    execution = make_execution(Status.SUCCEEDED)
    log = _log(id__gt=before)
    assert len(log) == 6
    stream.wait(stream.has_ids([e["id"] for e in log]))
    assert stream.events() == log  # exactly the log: same JSON, same order, nothing else
    assert {f.event for f in stream.frames if f.data} == {e["type"] for e in log}
    assert all(
        f.id == str(json_id)
        for f, json_id in zip(
            [f for f in stream.frames if f.data], [e["id"] for e in log], strict=True
        )
    )
    assert log[-1]["execution_id"] == execution.pk
