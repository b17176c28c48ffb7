"""Resume: disconnect mid-run, reconnect with the last id: the union is exactly the log."""

import threading

import pytest

from events.models import Event
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def _produce(count: int, started: threading.Event, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        from django.db import connection

        try:
            for i in range(count):
                make_execution(Status.SUCCEEDED, title=f"run {i}")
                started.set()
                if stop.is_set():
                    return
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _log_ids(after: int, **filters) -> list[int]:
    qs = Event.objects.filter(id__gt=after, **filters).order_by("id")
    return list(qs.values_list("id", flat=True))


@pytest.mark.parametrize(("kind", "via"), [("daphne", "header"), ("uvicorn", "parameter")])
def test_reconnect_with_last_id_gets_exactly_the_missed_events(
    start_server, redis_env, login, open_streams, kind, via
) -> None:
    server = start_server(kind, env=redis_env())
    cookies = login(server)
    before = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    first = open_streams(server.url, cookies=cookies)
    first.wait(lambda s: s.frames)  # subscribed (the retry frame is out)

    started, stop = threading.Event(), threading.Event()
    producer = _produce(25, started, stop)  # 6 events each
    first.wait(lambda s: len(s.ids()) >= 20)
    first.close()
    received_first = first.ids()
    last = first.last_id()
    assert last == str(received_first[-1])

    if via == "header":
        second = open_streams(server.url, cookies=cookies, headers={"Last-Event-ID": last})
    else:
        second = open_streams(server.url, cookies=cookies, params={"last_event_id": last})
    producer.join(120)
    assert not producer.is_alive()
    log = _log_ids(before)
    assert len(log) == 150
    second.wait(second.has_ids([i for i in log if i > received_first[-1]]), timeout=60)
    received_second = second.ids()
    assert received_first + received_second == log  # no gap, no duplicate, in order
    assert not [f for f in second.frames if f.event == "reset"]


def test_header_wins_over_parameter_and_filters_apply_to_replay(
    start_server, login, open_streams
) -> None:
    server = start_server("uvicorn")
    cookies = login(server)
    executions = [make_execution(Status.FAILED) for _ in range(3)]
    target = executions[1]
    all_ids = _log_ids(0)
    middle = all_ids[len(all_ids) // 2]
    stream = open_streams(
        server.url,
        cookies=cookies,
        params={"last_event_id": "0", "execution": str(target.pk), "type": "execution.*"},
        headers={"Last-Event-ID": str(middle)},
    )
    wanted = [
        i
        for i in _log_ids(middle, execution_id=target.pk)
        if Event.objects.get(pk=i).type.startswith("execution.")
    ]
    assert wanted  # the filter leaves something after the header's id
    stream.wait(stream.has_ids(wanted))
    assert stream.ids() == wanted
