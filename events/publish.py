"""Publishing committed events to the channel layer.

Publishing is best effort by design: the Event row is the truth and every stream
re-reads the log on a gap or a safety tick, so a failed publish delays an event but
never loses it, and it must never raise into the code that made the transition.
"""

import logging
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
        if listeners and isinstance(layer, InMemoryChannelLayer):
            # The local hub has it, and an in-memory layer reaches no other process; its
            # asyncio queues belong to the hub's loop, not to this thread's.
            return
        message = {"type": MESSAGE_TYPE, "event": event, "published_at": time.time()}
        async_to_sync(layer.group_send)(EVENTS_GROUP, message)
    except Exception:
        logger.exception(
            "publishing event %s failed; streams will read it from the log", event.get("id")
        )
