"""Two server processes, daphne and uvicorn, on one Redis: the same events, same order."""

import pytest

from events.models import Event
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]


def test_daphne_and_uvicorn_stream_the_same_events_in_the_same_order(
    start_server, redis_env, login, open_streams
) -> None:
    servers = [start_server("daphne", env=redis_env()), start_server("uvicorn", env=redis_env())]
    before = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    streams = []
    for server in servers:
        cookies = login(server)
        streams.append(open_streams(server.url, cookies=cookies))
        streams.append(open_streams(server.url, cookies=cookies, params={"type": "task.*"}))
    for stream in streams:
        stream.wait(lambda s: s.frames)  # subscribed

    for i in range(10):
        make_execution([Status.SUCCEEDED, Status.FAILED, Status.CANCELLED][i % 3], title=f"t{i}")

    log = list(Event.objects.filter(id__gt=before).order_by("id"))
    everything = [e.as_dict() for e in log]
    tasks_only = [e.as_dict() for e in log if e.type.startswith("task.")]
    for stream, wanted in zip(streams, [everything, tasks_only] * 2, strict=True):
        stream.wait(stream.has_ids([e["id"] for e in wanted]))
        assert stream.events() == wanted
    assert streams[0].events() == streams[2].events()
