"""Catch-up from the hub's recent events (events.recent): a stream resuming from an id the
hub still holds gets exactly what the log would give it (same filter, same grant), and
one resuming from an older id reads the log."""

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async

from events import metrics
from events.api import event_emit, events_after
from events.audience import EVERYTHING, Grant
from events.filters import EventFilter
from events.hub import close_hub, get_hub
from events.recent import RecentEvents
from events.streams import _replay_problem, _replay_problem_in_memory
from tests.events.test_hub import collect, wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest_asyncio.fixture
async def hub():
    hub = await get_hub()
    yield hub
    await close_hub()


def emit(i: int, audience: str, type: str = "execution.log") -> int:
    return event_emit(
        type=type,
        task_id=1,
        execution_id=1 + i % 2,
        data={"level": "info", "message": f"m{i}"},
        audience=audience,
    ).pk


def _emit_mixed(count: int) -> list[int]:
    """Events for group 1, for group 2, and step events for both, interleaved."""
    ids = []
    for i in range(count):
        ids.append(emit(i, " g:1 " if i % 3 else " g:2 "))
        if i % 4 == 0:
            ids.append(emit(i, " g:1 g:2 ", type="step.started"))
    return ids


def _pages(source: str) -> float:
    return metrics.CATCH_UP_PAGES.labels(source)._value.get()


def _without_audience(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "audience"} for e in events]


@pytest.mark.asyncio
async def test_catch_up_from_memory_is_what_the_log_gives_for_the_grant(hub) -> None:
    ids = await sync_to_async(_emit_mixed)(12)
    await wait_until(lambda: hub.cursor >= ids[-1])  # the hub has them all
    resume = ids[4]
    grant = Grant(tokens=frozenset({"g:1"}))
    event_filter = EventFilter(execution_id=2)
    assert hub.recent.covers(resume, hub.cursor)
    assert _replay_problem_in_memory(hub, resume, event_filter, grant) is None
    memory, log = _pages("memory"), _pages("log")
    sub = hub.subscribe(event_filter, after_id=resume, grant=grant)
    expected = await sync_to_async(events_after)(resume, execution_id=2, grant=grant)
    assert expected  # the test means something: some events pass, others do not
    assert len(expected) < len([i for i in ids if i > resume])
    assert await collect(hub, sub, len(expected)) == expected
    assert (_pages("memory"), _pages("log")) == (memory + 1, log)
    assert not sub.behind  # back on the live feed, nothing twice
    later = await sync_to_async(emit)(1, " g:1 ")
    assert [e["id"] for e in await collect(hub, sub, 1)] == [later]


@pytest.mark.asyncio
async def test_catch_up_in_memory_never_gives_what_the_grant_refuses(hub) -> None:
    ids = await sync_to_async(_emit_mixed)(9)
    await wait_until(lambda: hub.cursor >= ids[-1])  # the hub has them all
    nobody = hub.subscribe(EventFilter(), after_id=ids[0], grant=Grant(tokens=frozenset({"g:9"})))
    two = hub.subscribe(EventFilter(), after_id=ids[0], grant=Grant(tokens=frozenset({"g:2"})))
    assert await hub.next_items(nobody, 0.2) == []
    got = [event for event, _ in await hub.next_items(two, 1.0)]
    assert got and all(" g:2 " in e["audience"] for e in got)
    assert [e["id"] for e in got] == [
        e["id"] for e in await sync_to_async(events_after)(ids[0], grant=two.grant)
    ]


@pytest.mark.asyncio
async def test_an_id_older_than_memory_reads_the_log(settings) -> None:
    settings.EVENTS_MEMORY_CATCH_UP = 3
    hub = await get_hub()
    try:
        ids = await sync_to_async(_emit_mixed)(8)
        await wait_until(lambda: hub.cursor >= ids[-1])  # the hub has them all
        resume = ids[1]
        assert not hub.recent.covers(resume, hub.cursor)  # only the last 3 are kept
        assert hub.recent.covers(ids[-3], hub.cursor)
        log = _pages("log")
        sub = hub.subscribe(EventFilter(), after_id=resume, grant=EVERYTHING)
        expected = await sync_to_async(events_after)(resume)
        assert _without_audience(await collect(hub, sub, len(expected))) == expected
        assert _pages("log") > log
    finally:
        await close_hub()


@pytest.mark.asyncio
async def test_memory_and_log_agree_on_the_replay_window(hub, settings) -> None:
    ids = await sync_to_async(_emit_mixed)(12)
    await wait_until(lambda: hub.cursor >= ids[-1])  # the hub has them all
    settings.EVENTS_REPLAY_LIMIT = 3
    for grant in (EVERYTHING, Grant(tokens=frozenset({"g:2"}))):
        for resume in (ids[0], ids[-5], ids[-1]):
            in_memory = _replay_problem_in_memory(hub, resume, EventFilter(), grant)
            from_log = await sync_to_async(_replay_problem)(
                resume, EventFilter(), hub.cursor, grant
            )
            assert in_memory == from_log, (grant, resume)


def test_the_window_is_exact_or_empty() -> None:
    recent = RecentEvents(3, cursor=10)
    assert recent.covers(10, 10) and not recent.covers(9, 10)
    for i in range(11, 16):
        recent.add(({"id": i, "type": "execution.log", "audience": ""}, 0.0))
    # Ids 13, 14, 15 kept: a stream after 12 (or later) has everything it needs here.
    assert [e["id"] for e, _ in recent.items] == [13, 14, 15]
    assert recent.covers(12, 15) and not recent.covers(11, 15) and not recent.covers(16, 15)
    recent.forget(15)  # e.g. a commit arrived after the hub gave up on its id
    assert not recent.covers(12, 15) and recent.covers(15, 15)
    off = RecentEvents(0, cursor=10)
    assert not off.covers(10, 10)
