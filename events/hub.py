"""The per-process hub: one channel-layer subscription, fanned out to in-memory queues.

Each server process (each event loop) has one hub. It receives every published event
from the channel layer, in every configuration (with Redis, also first, straight from
commits made in this process, through `publish.attach`; the copy is dropped by id), puts
the events back into id order, and hands each to the subscribers whose filter matches.
The log is the truth: a hole in the ids is filled from the log, a slow safety tick
re-reads the log in case a message was lost, and on PostgreSQL a hole left by a
transaction still in flight holds the cursor for at most EVENTS_GAP_WAIT_SECONDS, so
that nothing committed is skipped or sent out of order.

A subscriber's queue is bounded. When it overflows the subscriber is not dropped: it
reads the log from the last id it was given (a page at a time) and rejoins the live
feed once it has caught up. Streams with nothing to send cost no queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import DatabaseError, connections

from events import metrics, sse
from events import publish as publishing
from events.api import events_after, last_event_id
from events.audience import EVERYTHING, Grant
from events.layers import InMemoryChannelLayer as EventsInMemoryChannelLayer
from events.models import Event
from events.recent import RecentEvents
from events.slots import Slot, StreamSlots, slots_for
from events.types import EventJSON

if TYPE_CHECKING:
    from events.filters import EventFilter, FragmentRenderer

logger = logging.getLogger(__name__)

PAGE = 500  # events per log read of the hub (shared by all subscribers)
CATCH_UP_PAGE = 200  # events per log read of one subscriber behind the live feed
RENDER_CACHE = 512  # rendered fragments kept per process, by (renderer, event id)
# Encoded JSON frames kept per process, by event id: enough for every subscriber that is
# a little behind to share one encoding, bounded in bytes so that large events cannot
# make the cache the memory a stalled client was kept from costing.
FRAME_CACHE = 4096
FRAME_CACHE_BYTES = 4 * 1024 * 1024
SKIPPED_KEPT = 1024  # ids given up on, remembered to notice a very late commit
GROUP_REFRESH_SECONDS = 60.0  # re-join the layer group (Redis forgets it on a restart)
HOLD_POLL_SECONDS = 0.1  # log re-read period while the cursor is held at a hole


def _at_timestamp(event: EventJSON) -> float:
    try:
        return datetime.fromisoformat(event["at"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()


Item = tuple[EventJSON, float]  # an event and when it was committed (for the latency metric)


@dataclass(eq=False)
class Subscriber:
    event_filter: EventFilter
    renderer: FragmentRenderer | None
    user_id: int | None
    grant: Grant  # what this subscriber may receive (events.audience)
    slot: Slot | None  # its place under EVENTS_MAX_STREAMS_PER_USER, freed on unsubscribe
    last_id: int  # the highest id handed to this subscriber (queued or read from the log)
    buffer: int
    behind: bool = False  # reading the log instead of the live feed
    reset_reason: str | None = None  # the hub could not keep continuity: send `reset`
    queue: deque[Item] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    timer: asyncio.TimerHandle | None = None  # wakes the stream for its heartbeat
    timer_when: float = 0.0
    wake_due: bool = False  # in the hub's list of subscribers to wake at its next flush

    def resetting(self) -> bool:  # a method: the hub sets reset_reason while we await
        return self.reset_reason is not None


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.cursor = 0  # every event with id <= cursor has been handed out, in order
        self.started = False
        self._start_lock = asyncio.Lock()
        self._pending: dict[int, Item] = {}
        self._hold_until: float | None = None
        self._skipped: OrderedDict[int, None] = OrderedDict()
        self._fill = asyncio.Event()
        self._tasks: list[asyncio.Future[None]] = []
        self._layer: Any = None  # channels ships no types
        self._in_memory = True
        self._channel: str | None = None
        self._wide: set[Subscriber] = set()
        self._by_task: dict[int, set[Subscriber]] = {}
        self._by_execution: dict[int, set[Subscriber]] = {}
        self._streams_by_user: dict[int | None, int] = {}
        self._renders: OrderedDict[tuple[str, int], asyncio.Future[str | None]] = OrderedDict()
        self._frames: OrderedDict[int, str] = OrderedDict()
        self._frames_bytes = 0
        self._filters: weakref.WeakValueDictionary[EventFilter, EventFilter] = (
            weakref.WeakValueDictionary()
        )
        self._grants: weakref.WeakValueDictionary[Grant, Grant] = weakref.WeakValueDictionary()
        self.slots: StreamSlots | None = None
        self._gap_wait = 0.0
        # Set once this process's channel is in the layer's group: what is published from
        # then on reaches the hub through the layer too (before, only through the log).
        self.joined = asyncio.Event()
        self.ticks = 0  # safety-tick queries made
        self.recent = RecentEvents(settings.EVENTS_MEMORY_CATCH_UP, 0)
        self._resync: asyncio.Future[None] | None = None
        self._to_wake: list[Subscriber] = []
        self._wake_handle: asyncio.Handle | None = None
        self._last_wake = -1e9
        self._wake_interval = settings.EVENTS_WAKE_INTERVAL_SECONDS

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        async with self._start_lock:
            if self.started:
                return
            self._layer = get_channel_layer()
            self._in_memory = self._layer is None or isinstance(self._layer, InMemoryChannelLayer)
            vendor = await sync_to_async(lambda: connections["default"].vendor)()
            # SQLite writers are serialised and take their id inside the write lock, so a
            # hole seen in the log is final; PostgreSQL hands out ids before commit.
            self._gap_wait = settings.EVENTS_GAP_WAIT_SECONDS if vendor == "postgresql" else 0
            self.cursor = await sync_to_async(_log_end)()
            self.recent = RecentEvents(settings.EVENTS_MEMORY_CATCH_UP, self.cursor)
            publishing.attach(self.loop, self._receive_local, self._layer)
            self.slots = slots_for(self.loop)
            self._tasks = [
                asyncio.ensure_future(self._pump()),
                asyncio.ensure_future(self._safety_tick()),
                asyncio.ensure_future(self.slots.keep_alive()),
            ]
            if self._layer is not None:
                self._tasks.append(asyncio.ensure_future(self._listen()))
            self.started = True

    async def aclose(self) -> None:
        self.detach()
        if self._wake_handle is not None:
            self._wake_handle.cancel()
            self._wake_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._channel and self._layer is not None:
            if isinstance(self._layer, EventsInMemoryChannelLayer):
                self._layer.remove_receiver(self._channel)
            with contextlib.suppress(Exception):
                await self._layer.group_discard(publishing.EVENTS_GROUP, self._channel)
        if self.slots is not None:
            await self.slots.aclose()
        self.started = False

    def detach(self) -> None:
        """Stop receiving this process's commits (also: a hub whose loop is gone, as in
        tests, which run one loop per test)."""
        publishing.detach(self.loop)

    # -- subscribers ------------------------------------------------------------------

    async def resync_if_idle(self) -> None:
        """With nobody listening the hub reads nothing, so its cursor may lag: bring it to
        the log's end before a first subscriber starts "from now".

        A burst of first subscribers (every stream reconnecting after a restart) shares
        one read of the log's end, not one each."""
        if self.has_subscribers():
            return
        if self._resync is None:
            self._resync = asyncio.ensure_future(self._resync_now())
            self._resync.add_done_callback(self._resync_done)
        await asyncio.shield(self._resync)

    def _resync_done(self, future: asyncio.Future[None]) -> None:
        self._resync = None

    async def _resync_now(self) -> None:
        latest = await sync_to_async(_log_end)()
        if latest > self.cursor and not self.has_subscribers():
            self.cursor = latest
            self.recent.forget(latest)  # the events skipped over were never dispatched
            self._pending = {k: v for k, v in self._pending.items() if k > latest}
            self._hold_until = None
            self._drain()

    def streams_of(self, user_id: int | None) -> int:
        """Streams `user_id` has open in this process."""
        return self._streams_by_user.get(user_id, 0)

    def subscribe(
        self,
        event_filter: EventFilter,
        *,
        after_id: int | None = None,
        renderer: FragmentRenderer | None = None,
        user_id: int | None = None,
        grant: Grant = EVERYTHING,
        slot: Slot | None = None,
    ) -> Subscriber:
        """A new subscriber: live from now, or from the log after `after_id` first. It
        receives only the events `grant` allows."""
        start = self.cursor if after_id is None else after_id
        # Equal filters (and grants) share one object, so dispatch matches each distinct
        # filter and each distinct grant once per event, not once per subscriber.
        event_filter = self._filters.setdefault(event_filter, event_filter)
        grant = self._grants.setdefault(grant, grant)
        sub = Subscriber(
            event_filter=event_filter,
            renderer=renderer,
            user_id=user_id,
            grant=grant,
            slot=slot,
            last_id=start,
            buffer=settings.EVENTS_SUBSCRIBER_BUFFER,
            behind=start < self.cursor,
        )
        if event_filter.task_id is not None:
            self._by_task.setdefault(event_filter.task_id, set()).add(sub)
        elif event_filter.execution_id is not None:
            self._by_execution.setdefault(event_filter.execution_id, set()).add(sub)
        else:
            self._wide.add(sub)
        self._streams_by_user[user_id] = self._streams_by_user.get(user_id, 0) + 1
        metrics.STREAMS_OPEN.inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub.closed:
            return
        sub.closed = True
        if sub.timer is not None:
            sub.timer.cancel()
            sub.timer = None
        f = sub.event_filter
        if f.task_id is not None:
            index, key = self._by_task, f.task_id
        elif f.execution_id is not None:
            index, key = self._by_execution, f.execution_id
        else:
            index, key = None, None
        if index is None:
            self._wide.discard(sub)
        elif key in index:
            index[key].discard(sub)
            if not index[key]:
                del index[key]
        left = self._streams_by_user.get(sub.user_id, 1) - 1
        if left > 0:
            self._streams_by_user[sub.user_id] = left
        else:
            self._streams_by_user.pop(sub.user_id, None)
        sub.queue.clear()
        if sub.slot is not None and self.slots is not None:
            self.slots.release(sub.slot)
            sub.slot = None
        metrics.STREAMS_OPEN.dec()

    def has_subscribers(self) -> bool:
        """Whether anyone listens (without listing every subscriber)."""
        return bool(self._wide or self._by_task or self._by_execution)

    def subscribers(self) -> list[Subscriber]:
        subs = list(self._wide)
        for group in (*self._by_task.values(), *self._by_execution.values()):
            subs.extend(group)
        return subs

    def queue_depths(self) -> list[int]:
        return [len(sub.queue) for sub in self.subscribers()]

    async def next_items(self, sub: Subscriber, timeout: float) -> list[Item]:
        """What `sub` should send next, in id order; [] when nothing came within timeout."""
        deadline = self.loop.time() + timeout
        while True:
            if sub.queue:
                items = list(sub.queue)
                sub.queue.clear()
                return items
            if sub.resetting():
                return []
            if sub.behind:
                items = await self._catch_up(sub)
                if items:
                    return items
                continue
            sub.wake.clear()
            # One timer per stream per heartbeat, not one per wait: with 10k streams a
            # fresh timeout per wake (asyncio.wait_for) was 44% of the loop. A timer armed
            # for an earlier deadline wakes the stream once; it then re-arms for the rest.
            if sub.timer is None or sub.timer_when > deadline:
                if sub.timer is not None:
                    sub.timer.cancel()
                sub.timer_when = deadline
                sub.timer = self.loop.call_at(deadline, _ring, sub)
            await sub.wake.wait()
            if sub.resetting():
                return []
            if not sub.queue and not sub.behind and self.loop.time() >= deadline - 0.001:
                return []

    async def _catch_up(self, sub: Subscriber) -> list[Item]:
        """One page of the log after sub.last_id, up to what the hub has handed out; the
        subscriber rejoins the live feed once a read reaches the hub's cursor."""
        target = self.cursor
        if self.recent.covers(sub.last_id, target):
            # No await from here on: the subscriber rejoins the live feed at the cursor.
            events = self.recent.page(
                sub.last_id, target, sub.event_filter, sub.grant, CATCH_UP_PAGE
            )
            sub.last_id = events[-1]["id"] if len(events) == CATCH_UP_PAGE else target
            sub.behind = len(events) == CATCH_UP_PAGE
            metrics.CATCH_UP_PAGES.labels("memory").inc()
            return [(event, _at_timestamp(event)) for event in events]
        page = await sync_to_async(events_after)(
            sub.last_id,
            limit=CATCH_UP_PAGE,
            up_to_id=target,
            grant=sub.grant,
            with_audience=True,
            **sub.event_filter.query(),
        )
        metrics.EVENTS_RECEIVED.labels("log").inc(len(page))
        metrics.CATCH_UP_PAGES.labels("log").inc()
        if page:
            sub.last_id = max(sub.last_id, page[-1]["id"])
        if len(page) < CATCH_UP_PAGE:
            sub.last_id = max(sub.last_id, target)
            if self.cursor == target:  # nothing was handed out while we read: rejoin
                sub.behind = False
        return [(event, _at_timestamp(event)) for event in page]

    # -- rendering, once per event per process ----------------------------------------

    def frame(self, event: EventJSON) -> str:
        """The JSON SSE frame of an event, encoded once per process, not per subscriber."""
        key = event["id"]
        text = self._frames.get(key)
        if text is None:
            text = self._frames[key] = sse.event_frame(event)
            self._frames_bytes += len(text)
            while len(self._frames) > 1 and (
                len(self._frames) > FRAME_CACHE or self._frames_bytes > FRAME_CACHE_BYTES
            ):
                self._frames_bytes -= len(self._frames.popitem(last=False)[1])
        return text

    async def render(self, renderer: FragmentRenderer, event: EventJSON) -> str | None:
        """The `event: fragment` frame of `event` for `renderer` (None: nothing to send),
        rendered and framed once per process and shared by every subscriber."""
        key = (renderer.name, event["id"])
        future = self._renders.get(key)
        if future is None:
            future = asyncio.ensure_future(sync_to_async(_render_frame)(renderer, event))
            self._renders[key] = future
            while len(self._renders) > RENDER_CACHE:
                self._renders.popitem(last=False)
        # shield: a subscriber that goes away must not cancel the render others wait for
        return await asyncio.shield(future)

    # -- receiving --------------------------------------------------------------------

    def _receive_local(self, message: publishing.Message) -> None:
        """An event committed in this process (see publish.attach), on the hub's loop."""
        self.offer(message["event"], message["published_at"], "local")

    def offer(self, event: EventJSON, committed: float | None, source: str) -> None:
        """Take one event from any source; duplicates are dropped by id."""
        metrics.received(source).inc()
        self._hold(event, committed)
        self._drain()
        if self._pending:
            self._fill.set()

    def offer_batch(self, messages: list[publishing.Message]) -> None:
        """`offer` for a layer's batch: the same, settled once for the whole batch."""
        metrics.received("layer").inc(len(messages))
        for message in messages:
            self._hold(message["event"], message["published_at"])
        self._drain()
        if self._pending:
            self._fill.set()

    def _hold(self, event: EventJSON, committed: float | None) -> None:
        event_id = event["id"]
        if event_id <= self.cursor:
            if event_id in self._skipped:
                self._late_commit(event)
            return
        if event_id not in self._pending:
            self._pending[event_id] = (event, committed if committed else _at_timestamp(event))

    def _drain(self) -> None:
        while self.cursor + 1 in self._pending:
            self._dispatch(self._pending.pop(self.cursor + 1))
        if not self._pending:
            self._hold_until = None

    def _dispatch(self, item: Item) -> None:
        event = item[0]
        self.cursor = event["id"]
        self.recent.add(item)
        candidates = list(self._wide)
        for index, key in (
            (self._by_task, event["task_id"]),
            (self._by_execution, event["execution_id"]),
        ):
            if key is not None and key in index:
                candidates.extend(index[key])
        # Thousands of streams share a handful of filters and grants: match each once.
        audience = event.get("audience", "")
        matched: dict[int, bool] = {}
        allowed: dict[int, bool] = {}
        for sub in candidates:
            if sub.behind or event["id"] <= sub.last_id:
                continue
            ok = matched.get(id(sub.event_filter))
            if ok is None:
                ok = matched[id(sub.event_filter)] = sub.event_filter.matches(event)
            if not ok:
                continue
            ok = allowed.get(id(sub.grant))
            if ok is None:
                ok = allowed[id(sub.grant)] = sub.grant.allows(audience)
            if not ok:
                continue
            if len(sub.queue) >= sub.buffer:
                # Never wait for a slow reader: it reads the log from its last id instead.
                sub.behind = True
                metrics.LOG_FALLBACKS.inc()
            else:
                sub.queue.append(item)
                sub.last_id = event["id"]
            if not sub.wake_due:
                sub.wake_due = True
                self._to_wake.append(sub)
        if self._to_wake and self._wake_handle is None:
            self._schedule_wakes()

    def _schedule_wakes(self) -> None:
        """Wake the subscribers given items after this callback (so the events of one
        batch go out in one write each), and while events keep coming at most once per
        wake interval: at 1k firehose streams and 100 events/s a wake per event was a
        task switch and a send per event per stream."""
        due = self._last_wake + self._wake_interval
        if due <= self.loop.time():
            self._wake_handle = self.loop.call_soon(self._wake_all)
        else:
            self._wake_handle = self.loop.call_at(due, self._wake_all)

    def _wake_all(self) -> None:
        self._wake_handle = None
        self._last_wake = self.loop.time()
        subs, self._to_wake = self._to_wake, []
        for sub in subs:
            sub.wake_due = False
            sub.wake.set()

    def _late_commit(self, event: EventJSON) -> None:
        """An id the hub stopped waiting for committed after all: the matching streams
        missed it in order, so they are told to refetch."""
        del self._skipped[event["id"]]
        self.recent.forget(self.cursor)  # memory missed it too: catch-ups read the log
        for sub in self.subscribers():
            if sub.event_filter.matches(event) and sub.grant.allows(event.get("audience", "")):
                sub.reset_reason = "late commit"
                sub.wake.set()

    def _skip_hole(self) -> None:
        first = min(self._pending)
        for missing in range(self.cursor + 1, first):
            self._skipped[missing] = None
            if len(self._skipped) > SKIPPED_KEPT:
                self._skipped.popitem(last=False)
        metrics.GAP_SKIPS.inc()
        logger.warning("events %s..%s never committed; moving on", self.cursor + 1, first - 1)
        self.cursor = first - 1
        self._drain()

    async def _read_log(self) -> None:
        """Read the log after the cursor until it has nothing more, or a hole holds."""
        while True:
            start = self.cursor
            page = await sync_to_async(events_after)(start, limit=PAGE, with_audience=True)
            metrics.LOG_READS.inc()
            for event in page:
                if event["id"] > self.cursor and event["id"] not in self._pending:
                    metrics.received("log").inc()
                    self._pending[event["id"]] = (event, _at_timestamp(event))
            self._drain()
            if self._pending and len(page) == PAGE and self.cursor > start:
                continue  # more log to read before anything can be called a hole
            if self._pending:  # cursor + 1 is not committed, later ids are: a hole
                now = time.monotonic()
                if self._hold_until is None:
                    self._hold_until = now + self._gap_wait
                if now < self._hold_until:
                    return
                self._skip_hole()
                continue
            if len(page) < PAGE:
                return

    async def _pump(self) -> None:
        while True:
            timeout = None
            if self._hold_until is not None:
                timeout = max(0.0, min(HOLD_POLL_SECONDS, self._hold_until - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fill.wait(), timeout)
            self._fill.clear()
            try:
                await self._read_log()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("reading the event log failed; retrying on the next tick")

    async def _safety_tick(self) -> None:
        """One cheap max-id query per process per tick, and only while someone listens."""
        since_group = time.monotonic()
        while True:
            await asyncio.sleep(settings.EVENTS_SAFETY_TICK_SECONDS)
            if not self.has_subscribers():
                continue
            self.ticks += 1
            try:
                if await sync_to_async(last_event_id)() > self.cursor:
                    self._fill.set()
            except Exception:
                logger.exception("safety tick could not read the log")
            if not self._in_memory and time.monotonic() - since_group > GROUP_REFRESH_SECONDS:
                since_group = time.monotonic()
                with contextlib.suppress(Exception):
                    await self._layer.group_add(publishing.EVENTS_GROUP, self._channel)

    async def _listen(self) -> None:
        """The one channel-layer subscription of this process."""
        backoff = 0.1
        while True:
            try:
                if self._channel is None:
                    self._channel = await self._layer.new_channel(prefix="events-hub.")
                if isinstance(self._layer, EventsInMemoryChannelLayer):
                    # Its messages arrive as calls on this loop (see events.layers).
                    self._layer.add_receiver(self._channel, self._on_layer_message)
                await self._layer.group_add(publishing.EVENTS_GROUP, self._channel)
                self.joined.set()
                self._fill.set()  # anything published while we were not listening
                if isinstance(self._layer, EventsInMemoryChannelLayer):
                    return
                while True:
                    message = await self._layer.receive(self._channel)
                    backoff = 0.1
                    self._on_layer_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "channel layer receive failed (%s); rejoining in %.1fs", exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _on_layer_message(self, message: Mapping[str, Any]) -> None:
        if message.get("type") == publishing.MESSAGE_TYPE and "event" in message:
            self.offer(message["event"], message.get("published_at"), "layer")
        elif message.get("type") == publishing.BATCH_TYPE:
            self.offer_batch(message["messages"])


def _log_end() -> int:
    """The id the live feed starts after: the log's highest id. On an empty log, the id
    counter's last value instead (PostgreSQL's sequence, SQLite's AUTOINCREMENT: both
    outlive deleted rows), so that the next id is not taken for a hole."""
    latest = last_event_id()
    connection = connections["default"]
    if latest == 0 and connection.vendor == "sqlite":  # AUTOINCREMENT keeps its counter
        with connection.cursor() as cursor, contextlib.suppress(DatabaseError):
            cursor.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = %s", [Event._meta.db_table]
            )
            row = cursor.fetchone()
            latest = row[0] if row else 0
    elif latest == 0 and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Event._meta.db_table])
            sequence = cursor.fetchone()[0]
            if sequence:
                cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
                last_value, is_called = cursor.fetchone()
                latest = last_value if is_called else last_value - 1
    return latest


def _ring(sub: Subscriber) -> None:
    """A subscriber's heartbeat timer fired."""
    sub.timer = None
    sub.wake.set()


def _render_frame(renderer: FragmentRenderer, event: EventJSON) -> str | None:
    """The event's fragment, rendered and framed: the text every subscriber sends."""
    try:
        html = renderer.render(event)
    except Exception:
        logger.exception("renderer %s failed for event %s", renderer.name, event.get("id"))
        return None
    return None if html is None else sse.fragment_frame(html, event_id=event["id"])


_hub: Hub | None = None


async def get_hub() -> Hub:
    """This process's hub, started on first use, bound to the running loop."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop:
        if _hub is not None:
            _hub.detach()
        _hub = Hub(loop)
    await _hub.start()
    return _hub


async def close_hub() -> None:
    global _hub
    hub, _hub = _hub, None
    if hub is not None:
        await hub.aclose()


def _queue_depth(stat: str) -> float:
    hub = _hub
    if hub is None:
        return 0
    depths = hub.queue_depths()
    if not depths:
        return 0
    return max(depths) if stat == "max" else sum(depths)


metrics.QUEUE_DEPTH.labels("total").set_function(lambda: _queue_depth("total"))
metrics.QUEUE_DEPTH.labels("max").set_function(lambda: _queue_depth("max"))
