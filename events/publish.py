"""Publishing committed events to the channel layer, in every configuration: Redis from
one publisher thread per process (this process's hub also gets each event committed here
straight away, see `attach`); the in-memory layer on the loop of this process's hub, which
then receives them only through that layer.

Publishing is best effort by design: the Event row is the truth and every stream
re-reads the log on a gap or a safety tick, so a failed publish delays an event but
never loses it, and it must never raise into the code that made the transition.
"""

import asyncio
import atexit
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from events.layers import InMemoryChannelLayer as EventsInMemoryChannelLayer
from events.types import EventJSON

logger = logging.getLogger(__name__)

# The one channel-layer group every server process's hub listens to.
EVENTS_GROUP = "events"
MESSAGE_TYPE = "event.published"


class Message(TypedDict):
    """What goes through the channel layer: one event, and when it was published."""

    type: str  # MESSAGE_TYPE
    event: EventJSON
    published_at: float  # epoch seconds, for the hub's latency metric


class Batch(TypedDict):
    """Events committed in this process, in commit order, as one in-memory layer message:
    what one wake-up of the hub's loop took (a burst costs one send, not one per event)."""

    type: str  # BATCH_TYPE
    messages: list[Message]


BATCH_TYPE = "event.published.batch"


LocalListener = Callable[[EventJSON], None]
_local_listeners: list[LocalListener] = []
_local_lock = threading.Lock()


def add_local_listener(listener: LocalListener) -> None:
    """Also hand each published event to `listener`, in the thread that committed it (so
    it must be thread-safe and quick). The hub does not use this: see `attach`."""
    with _local_lock:
        if listener not in _local_listeners:
            _local_listeners.append(listener)


def remove_local_listener(listener: LocalListener) -> None:
    with _local_lock:
        if listener in _local_listeners:
            _local_listeners.remove(listener)


# Events committed within this long of a hand-over to the hub ride along with the next.
HAND_OVER_WINDOW = 0.001


class _HubFeed:
    """Events committed in this process, handed over on the loop of this process's hub.

    A commit costs at most one wake-up of the hub's loop: events committed while one is
    pending ride along with it. In a burst (a hand-over less than HAND_OVER_WINDOW ago)
    the next one waits out the rest of the window, so a burst costs the loop one
    wake-up per window, not one per commit; an event that comes alone is handed over at
    once. With the in-memory layer (whose asyncio queues belong to
    that loop) each wake-up sends what it took to the layer as one `Batch`, in commit
    order, on that loop, never an event loop per event, and the hub reads it from there
    like any other group member. With a network layer the hub gets the events here
    directly (`receive`) and drops the copy the layer brings back by id.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, receive: Callable[[Message], None], layer: Any
    ) -> None:
        self.loop = loop
        self.receive = receive
        self.layer = layer  # the hub's, taken when it started
        self._lock = threading.Lock()
        self._arrived: list[Message] = []
        self._woken = False
        self._taken_at = -HAND_OVER_WINDOW  # loop time of the last hand-over
        self._unsent: deque[Batch] = deque()  # only touched on the loop
        self._sender: asyncio.Future[None] | None = None

    def put(self, message: Message) -> None:
        with self._lock:
            self._arrived.append(message)
            if self._woken:
                return
            self._woken = True
        self.loop.call_soon_threadsafe(self._woke)

    def _woke(self) -> None:
        next_at = self._taken_at + HAND_OVER_WINDOW
        if next_at > self.loop.time():
            self.loop.call_at(next_at, self._take)  # a burst: gather the rest of the window
        else:
            self._take()

    def _take(self) -> None:
        self._taken_at = self.loop.time()
        with self._lock:
            batch, self._arrived, self._woken = self._arrived, [], False
        layer = self.layer
        if not isinstance(layer, InMemoryChannelLayer):
            for message in batch:
                self.receive(message)
            return
        if isinstance(layer, EventsInMemoryChannelLayer):  # ours never waits: no task
            try:
                layer.group_send_nowait(EVENTS_GROUP, Batch(type=BATCH_TYPE, messages=batch))
            except Exception:
                _log_failures(batch)
            return
        self._unsent.append(Batch(type=BATCH_TYPE, messages=batch))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send(layer))

    async def _send(self, layer: InMemoryChannelLayer) -> None:
        """channels' own in-memory layer: one task sends, so batches keep commit order."""
        while self._unsent:
            batch = self._unsent.popleft()
            try:
                await layer.group_send(EVENTS_GROUP, batch)
            except Exception:
                _log_failures(batch["messages"])


_hub_feed: _HubFeed | None = None


def attach(loop: asyncio.AbstractEventLoop, receive: Callable[[Message], None], layer: Any) -> None:
    """This process's hub: events committed in this process are sent to an in-memory layer
    on `loop`, or with a network layer handed to `receive(message)` there (see _HubFeed)."""
    global _hub_feed
    _hub_feed = _HubFeed(loop, receive, layer)


def detach(loop: asyncio.AbstractEventLoop) -> None:
    global _hub_feed
    if _hub_feed is not None and _hub_feed.loop is loop:
        _hub_feed = None


def publish(event: EventJSON) -> None:
    """Send one committed event to the channel layer (and this process's hub and local
    listeners); never raises.

    The message carries `published_at` (epoch seconds) for the hub's latency metric.
    """
    with _local_lock:
        listeners = list(_local_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            logger.exception("local listener failed for event %s", event.get("id"))
    try:
        message = Message(type=MESSAGE_TYPE, event=event, published_at=time.time())
        layer = get_channel_layer()
        feed = _hub_feed
        if feed is not None and not feed.loop.is_closed():
            feed.put(message)  # with the in-memory layer, the feed sends to it too
        elif isinstance(layer, InMemoryChannelLayer) and layer.groups.get(EVENTS_GROUP):
            # No hub here, yet a listener: a test's own channel, on the caller's loop.
            async_to_sync(layer.group_send)(EVENTS_GROUP, message)
        if layer is not None and not isinstance(layer, InMemoryChannelLayer):
            _publisher.submit(message)
    except Exception:
        _log_failure(event)


def flush(timeout: float = 5.0) -> bool:
    """Wait until every event handed to the background publisher was sent (or failed)."""
    return _publisher.flush(timeout)


def _log_failures(batch: list[Message]) -> None:
    for message in batch:
        _log_failure(message["event"])


def _log_failure(event: EventJSON) -> None:
    logger.exception(
        "publishing event %s failed; streams will read it from the log", event.get("id")
    )


class _Publisher:
    """One thread with one event loop per process sends to a network channel layer.

    `async_to_sync(group_send)` from a plain thread builds a new event loop, and with it a
    new Redis connection pool, for every event: about 40 ms each. One long-lived loop
    keeps one pool, sends in commit order, and never makes the committing code wait.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unsent = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, message: Message) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="events-publisher", daemon=True
                )
                self._thread.start()
            self._unsent += 1
        self._queue.put(message)

    def flush(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._unsent == 0, timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < 500:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                loop.run_until_complete(self._send(batch))
                with self._idle:
                    self._unsent -= len(batch)
                    self._idle.notify_all()
        finally:
            loop.close()

    @staticmethod
    async def _send(batch: list[Message]) -> None:
        layer = get_channel_layer()
        for message in batch:
            try:
                await layer.group_send(EVENTS_GROUP, message)
            except Exception:
                _log_failure(message["event"])


_publisher = _Publisher()
atexit.register(flush, 5.0)  # a worker's last events reach the servers before it exits
