"""The hub in-process, with the real database and the real channel layer: gap filling,
holding the cursor at a hole of an uncommitted transaction, overflow to the log."""

import asyncio
import threading

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from events import metrics
from events.api import event_emit
from events.filters import EventFilter
from events.hub import close_hub, get_hub
from events.models import Event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest_asyncio.fixture
async def hub():
    hub = await get_hub()
    yield hub
    await close_hub()


def emit(message: str = "m", execution_id: int = 1) -> Event:
    return event_emit(
        type="execution.log",
        task_id=1,
        execution_id=execution_id,
        data={"level": "info", "message": message},
    )


async def collect(hub, sub, count: int, timeout: float = 20) -> list[dict]:
    got: list[dict] = []

    async def run() -> None:
        while len(got) < count:
            # The hub's events also carry their audience, which frames leave out.
            got.extend(
                {k: v for k, v in event.items() if k != "audience"}
                for event, _ in await hub.next_items(sub, 1.0)
            )

    await asyncio.wait_for(run(), timeout)
    return got


async def wait_until(predicate, timeout: float = 20) -> None:
    async def run() -> None:
        while not predicate():
            await asyncio.sleep(0.01)  # polls an in-process condition, not a guess at time

    await asyncio.wait_for(run(), timeout)


@pytest.mark.asyncio
async def test_gap_in_live_ids_is_filled_from_the_log(hub) -> None:
    sub = hub.subscribe(EventFilter())
    # Two events that were never published (a lost message), then a published one.
    silent = await sync_to_async(
        lambda: [Event.objects.create(type="execution.log", task_id=1, data={}) for _ in range(2)]
    )()
    loud = await sync_to_async(emit)()
    got = await collect(hub, sub, 3)
    assert [e["id"] for e in got] == [silent[0].pk, silent[1].pk, loud.pk]
    assert got == [e.as_dict() for e in await sync_to_async(list)(Event.objects.order_by("id"))]


@pytest.mark.asyncio
async def test_a_lost_burst_longer_than_a_log_page_is_read_whole_not_skipped(hub) -> None:
    from events.hub import PAGE

    sub = hub.subscribe(EventFilter())
    skips = metrics.GAP_SKIPS._value.get()
    silent = await sync_to_async(
        lambda: Event.objects.bulk_create(
            Event(type="execution.log", task_id=1, data={}) for _ in range(PAGE * 2 + 7)
        )
    )()
    loud = await sync_to_async(emit)()
    got = await collect(hub, sub, len(silent) + 1, timeout=60)
    expected = await sync_to_async(lambda: [e.pk for e in Event.objects.order_by("id")])()
    assert [e["id"] for e in got] == expected
    assert expected[-1] == loud.pk
    assert metrics.GAP_SKIPS._value.get() == skips


@pytest.mark.asyncio
async def test_subscriber_gets_only_matching_events_in_order(hub) -> None:
    mine = hub.subscribe(EventFilter(execution_id=2))
    steps = hub.subscribe(EventFilter(prefixes=("step.",)))
    await sync_to_async(emit)(execution_id=1)
    wanted = await sync_to_async(emit)(execution_id=2)
    step = await sync_to_async(event_emit)(type="step.started", task_id=1, execution_id=3, data={})
    assert [e["id"] for e in await collect(hub, mine, 1)] == [wanted.pk]
    assert [e["id"] for e in await collect(hub, steps, 1)] == [step.pk]


@pytest.mark.asyncio
async def test_overflowing_subscriber_reads_the_log_and_loses_nothing(hub, settings) -> None:
    settings.EVENTS_SUBSCRIBER_BUFFER = 3
    slow = hub.subscribe(EventFilter())
    fast = hub.subscribe(EventFilter())
    assert slow.buffer == 3
    fallbacks = metrics.LOG_FALLBACKS._value.get()
    emitted = []
    for i in range(12):
        emitted.append(await sync_to_async(emit)(f"m{i}"))
        # The fast one keeps up; the slow one reads nothing meanwhile.
        assert [e["id"] for e in await collect(hub, fast, 1)] == [emitted[-1].pk]
        assert len(slow.queue) <= 3
    assert slow.behind
    assert metrics.LOG_FALLBACKS._value.get() == fallbacks + 1
    got = await collect(hub, slow, 12)
    assert [e["id"] for e in got] == [e.pk for e in emitted]
    assert not slow.behind  # rejoined the live feed
    later = await sync_to_async(emit)("after")
    assert [e["id"] for e in await collect(hub, slow, 1)] == [later.pk]


def _skip_unless_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers: no transaction commits out of id order")


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_hole_of_an_uncommitted_transaction_holds_the_cursor(settings) -> None:
    _skip_unless_postgres()
    settings.EVENTS_GAP_WAIT_SECONDS = 60  # far longer than the test: only a commit frees it
    hub = await get_hub()
    try:
        sub = hub.subscribe(EventFilter())
        inserted, release, done = threading.Event(), threading.Event(), threading.Event()
        ids: dict[str, int] = {}

        def slow_writer() -> None:
            try:
                with transaction.atomic():
                    ids["slow"] = emit("slow").pk
                    inserted.set()
                    release.wait(30)
            finally:
                connection.close()
                done.set()

        threading.Thread(target=slow_writer, daemon=True).start()
        assert await asyncio.to_thread(inserted.wait, 30)
        fast = await sync_to_async(emit)("fast")
        assert fast.pk > ids["slow"]
        # The hub has seen the later event and read the log: it holds at the hole.
        await wait_until(lambda: hub._hold_until is not None)
        assert hub.cursor < ids["slow"]
        assert not sub.queue
        release.set()
        got = await collect(hub, sub, 2)
        assert [e["id"] for e in got] == [ids["slow"], fast.pk]
        assert await asyncio.to_thread(done.wait, 30)
    finally:
        await close_hub()


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_hole_of_a_rolled_back_transaction_is_passed_after_the_wait(settings) -> None:
    _skip_unless_postgres()
    settings.EVENTS_GAP_WAIT_SECONDS = 0.3
    hub = await get_hub()
    try:
        sub = hub.subscribe(EventFilter())

        def rolled_back() -> None:
            with transaction.atomic():
                emit("gone")
                transaction.set_rollback(True)

        await sync_to_async(rolled_back)()
        kept = await sync_to_async(emit)("kept")
        got = await collect(hub, sub, 1)
        assert [e["id"] for e in got] == [kept.pk]
        assert metrics.GAP_SKIPS._value.get() >= 1
    finally:
        await close_hub()


@pytest.mark.redis
@pytest.mark.asyncio
async def test_hub_receives_from_redis_once_and_dedupes_local_copies(redis_channel_layer) -> None:
    hub = await get_hub()
    try:
        assert not hub._in_memory
        # The hub joins the layer's group in a task of its own: events emitted before it
        # has joined reach it only through the log, never through Redis.
        await asyncio.wait_for(hub.joined.wait(), 30)
        sub = hub.subscribe(EventFilter())
        layer_before = metrics.EVENTS_RECEIVED.labels("layer")._value.get()
        emitted = [await sync_to_async(emit)(f"r{i}") for i in range(5)]
        got = await collect(hub, sub, 5)
        assert [e["id"] for e in got] == [e.pk for e in emitted]
        # Each came locally and through Redis; each was delivered once.
        await wait_until(
            lambda: metrics.EVENTS_RECEIVED.labels("layer")._value.get() >= layer_before + 5
        )
        assert not sub.queue
    finally:
        await close_hub()


@pytest.mark.asyncio
async def test_in_memory_layer_carries_this_process_events_to_the_hub(hub) -> None:
    """The embedded default publishes through its layer like any other: the hub gets each
    event from the in-memory layer (nothing on the side), and delivers it once."""
    assert hub._in_memory
    await asyncio.wait_for(hub.joined.wait(), 30)
    sub = hub.subscribe(EventFilter())
    local_before = metrics.EVENTS_RECEIVED.labels("local")._value.get()
    layer_before = metrics.EVENTS_RECEIVED.labels("layer")._value.get()
    log_before = metrics.EVENTS_RECEIVED.labels("log")._value.get()
    emitted = [await sync_to_async(emit)(f"m{i}") for i in range(5)]
    got = await collect(hub, sub, 5)
    assert [e["id"] for e in got] == [e.pk for e in emitted]
    assert metrics.EVENTS_RECEIVED.labels("layer")._value.get() == layer_before + 5
    assert metrics.EVENTS_RECEIVED.labels("local")._value.get() == local_before
    assert metrics.EVENTS_RECEIVED.labels("log")._value.get() == log_before
    assert not sub.queue


@pytest.mark.asyncio
async def test_idle_streams_cost_one_query_per_tick_not_per_stream(settings) -> None:
    settings.EVENTS_SAFETY_TICK_SECONDS = 0.1
    hub = await get_hub()
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    # The hub's reads run on sync_to_async's thread: watch that thread's connection.
    wrapper = await sync_to_async(lambda: connection.execute_wrapper(count))()
    await sync_to_async(wrapper.__enter__)()
    try:
        subs = [hub.subscribe(EventFilter()) for _ in range(50)]
        ticks = hub.ticks
        # Every stream waits out one heartbeat interval with nothing to send.
        results = await asyncio.gather(*(hub.next_items(sub, 0.5) for sub in subs))
        assert results == [[]] * 50
        made = hub.ticks - ticks
    finally:
        await sync_to_async(wrapper.__exit__)(None, None, None)
        await close_hub()
    assert made >= 1, made
    assert len(queries) <= made + 1  # the max-id query of each tick, nothing per stream
    assert all("MAX" in q.upper() or "ORDER BY" in q.upper() for q in queries)
