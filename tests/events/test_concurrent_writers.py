"""Eight writer threads commit at once (on PostgreSQL, out of id order): every client's
ids are strictly increasing and equal the log's matching ids, none missing."""

import threading

import pytest
from django.db import connection

from events.models import Event
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.postgres]

WRITERS = 8
RUNS_PER_WRITER = 6  # 4 to 6 events per run


def _writer(index: int, barrier: threading.Barrier, errors: list) -> None:
    try:
        barrier.wait(30)
        for run in range(RUNS_PER_WRITER):
            status = [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED][(index + run) % 3]
            make_execution(status, title=f"w{index}-{run}")
    except BaseException as exc:  # reported below
        errors.append(exc)
    finally:
        connection.close()


def test_concurrent_writers_reach_every_client_in_id_order_without_gaps(
    start_server, redis_env, login, open_streams
) -> None:
    env = redis_env(EVENTS_GAP_WAIT_SECONDS="5")
    servers = [start_server("daphne", env=env), start_server("uvicorn", env=env)]
    before = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    streams = []
    for server in servers:
        cookies = login(server)
        streams.append((open_streams(server.url, cookies=cookies), lambda e: True))
        streams.append(
            (
                open_streams(server.url, cookies=cookies, params={"type": "execution.status"}),
                lambda e: e.type == "execution.status",
            )
        )
    for stream, _ in streams:
        stream.wait(lambda s: s.frames)

    barrier = threading.Barrier(WRITERS)
    errors: list = []
    threads = [
        threading.Thread(target=_writer, args=(i, barrier, errors), daemon=True)
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not errors, errors

    log = list(Event.objects.filter(id__gt=before).order_by("id"))
    assert len(log) >= WRITERS * RUNS_PER_WRITER * 4
    for stream, keep in streams:
        wanted = [e.pk for e in log if keep(e)]
        stream.wait(stream.has_ids(wanted), timeout=60)
        ids = stream.ids()
        assert ids == sorted(set(ids))  # strictly increasing
        assert ids == wanted
        assert not [f for f in stream.frames if f.event == "reset"]
