"""Publishing committed events to the channel layer.

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
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)

# The one channel-layer group every server process's hub listens to.
EVENTS_GROUP = "events"
MESSAGE_TYPE = "event.published"

LocalListener = Callable[[dict], None]
_local_listeners: list[LocalListener] = []
_local_lock = threading.Lock()


def add_local_listener(listener: LocalListener) -> None:
    """Also hand each published event to `listener` in this process (the hub).

    A listener is called from whatever thread commits, so it must be thread-safe and
    quick (e.g. `loop.call_soon_threadsafe`).
    """
    with _local_lock:
        if listener not in _local_listeners:
            _local_listeners.append(listener)


def remove_local_listener(listener: LocalListener) -> None:
    with _local_lock:
        if listener in _local_listeners:
            _local_listeners.remove(listener)


def publish(event: dict) -> None:
    """Send one committed event to local listeners and the channel layer; never raises.

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
        layer = get_channel_layer()
        if layer is None:
            return
        message = {"type": MESSAGE_TYPE, "event": event, "published_at": time.time()}
        if isinstance(layer, InMemoryChannelLayer):
            if listeners or not layer.groups.get(EVENTS_GROUP):
                # The local hub has it (or nobody listens), and an in-memory layer reaches
                # no other process; its asyncio queues belong to the hub's loop, not to
                # this thread's, and a send would build an event loop per event.
                return
            async_to_sync(layer.group_send)(EVENTS_GROUP, message)
            return
        _publisher.submit(message)
    except Exception:
        _log_failure(event)


def flush(timeout: float = 5.0) -> bool:
    """Wait until every event handed to the background publisher was sent (or failed)."""
    return _publisher.flush(timeout)


def _log_failure(event: dict) -> None:
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
        self._queue: queue.SimpleQueue[dict | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._unsent = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, message: dict) -> None:
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
    async def _send(batch: list[dict]) -> None:
        layer = get_channel_layer()
        for message in batch:
            try:
                await layer.group_send(EVENTS_GROUP, message)
            except Exception:
                _log_failure(message["event"])


_publisher = _Publisher()
atexit.register(flush, 5.0)  # a worker's last events reach the servers before it exits
