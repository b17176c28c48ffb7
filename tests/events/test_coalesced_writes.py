"""Wakes coalesced by the hub (EVENTS_WAKE_INTERVAL_SECONDS) and the writes joined by the
stream: each event still reaches the client as its own frame with its own id, in order,
once; a deferred wake is never lost; a reader that does not keep up still falls back to
the log."""

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from events import metrics
from events.filters import EventFilter
from events.hub import close_hub, get_hub
from events.models import Event
from events.types import EventJSON
from tests.events.test_hub import collect, emit

pytestmark = [pytest.mark.django_db(transaction=True)]


def burst(count: int, prefix: str = "b") -> list[int]:
    """`count` events committed in one transaction: the hub gets them as one batch."""
    with transaction.atomic():
        return [emit(f"{prefix}{i}").pk for i in range(count)]


def unpublished(event_id: int) -> EventJSON:
    return {
        "id": event_id,
        "type": "execution.log",
        "at": timezone.now().isoformat(),
        "task_id": 1,
        "execution_id": 1,
        "data": {},
        "audience": "",
    }


@pytest.fixture
def wake_interval(settings):
    def set_to(seconds: float) -> None:
        settings.EVENTS_WAKE_INTERVAL_SECONDS = seconds

    return set_to


@pytest.mark.asyncio
async def test_events_dispatched_in_one_callback_wake_a_subscriber_once(wake_interval) -> None:
    wake_interval(0.0)
    hub = await get_hub()
    try:
        sub = hub.subscribe(EventFilter())
        # Ids past the log's end, so that no read of the log races the offers below.
        ids = [hub.cursor + 1 + i for i in range(20)]
        # Offered within one callback of the loop (as one batch from the layer is): the
        # subscriber is woken once, after the callback, and takes all of them at once.
        for event_id in ids:
            hub.offer(unpublished(event_id), None, "layer")
        assert not sub.wake.is_set()
        items = await hub.next_items(sub, 10.0)
        assert [event["id"] for event, _ in items] == ids
    finally:
        await close_hub()


@pytest.mark.asyncio
async def test_a_wake_deferred_by_the_interval_still_comes(wake_interval) -> None:
    wake_interval(0.3)
    hub = await get_hub()
    try:
        sub = hub.subscribe(EventFilter())
        first = await sync_to_async(emit)("first")
        assert [e["id"] for e in await collect(hub, sub, 1)] == [first.pk]
        # Within the interval of the last wake: this one is deferred, not dropped.
        later = [(await sync_to_async(emit)(f"later{i}")).pk for i in range(3)]
        got = await collect(hub, sub, 3)
        assert [e["id"] for e in got] == later
    finally:
        await close_hub()


@pytest.mark.asyncio
async def test_slow_reader_with_deferred_wakes_falls_back_to_the_log(
    wake_interval, settings
) -> None:
    wake_interval(0.05)
    settings.EVENTS_SUBSCRIBER_BUFFER = 4
    hub = await get_hub()
    try:
        slow = hub.subscribe(EventFilter())
        fast = hub.subscribe(EventFilter())
        fallbacks = metrics.LOG_FALLBACKS._value.get()
        emitted: list[int] = []
        for i in range(5):
            emitted += await sync_to_async(burst)(3, prefix=f"s{i}-")
            got = await collect(hub, fast, 3)
            assert [e["id"] for e in got] == emitted[-3:]
            assert len(slow.queue) <= 4
        assert slow.behind
        assert metrics.LOG_FALLBACKS._value.get() == fallbacks + 1
        got = await collect(hub, slow, len(emitted))
        assert [e["id"] for e in got] == emitted  # in order, none twice, none missing
        assert not slow.behind
    finally:
        await close_hub()


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_coalesced_writes_keep_one_frame_and_id_per_event(
    start_server, redis_env, login, open_streams, kind
) -> None:
    # A long interval makes every stream write carry many events at once.
    server = start_server(kind, env=redis_env(EVENTS_WAKE_INTERVAL_SECONDS="0.5"))
    cookies = login(server)
    stream = open_streams(server.url, cookies=cookies)
    assert stream.wait_status() == 200
    stream.wait(lambda s: len(s.frames) >= 1)
    ids: list[int] = []
    for round_ in range(4):
        ids += burst(25, prefix=f"r{round_}-")
        ids.append(emit("single").pk)
    stream.wait(stream.has_ids(ids))
    log = [e.as_dict() for e in Event.objects.filter(id__gte=ids[0]).order_by("id")]
    assert stream.events() == log  # the log exactly: same JSON, id order, none twice
    data_frames = [f for f in stream.frames if f.data]
    assert [f.id for f in data_frames] == [str(e["id"]) for e in log]
    assert [f.event for f in data_frames] == [e["type"] for e in log]
