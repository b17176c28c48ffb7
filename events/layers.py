"""The in-memory channel layer of the embedded default (no REDIS_URL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

Receiver = Callable[[Mapping[str, Any]], None]
CLEAN_EVERY_SECONDS = 1.0  # expiry is counted in tens of seconds: a sweep a second is plenty
VALID_NAMES_KEPT = 10_000  # names checked once each (a group, the hubs' channels)


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    """channels' in-memory layer, made cheap enough to carry every event of this process
    to its hub (see events.publish); same semantics, less work per message:

    - `group_send` loops over the members: channels makes a task per member and waits on
      them with `as_completed`, but `send` never waits, so one loop does the same work
      (and `group_send_nowait` does it without a coroutine, for code on the layer's loop).
    - `send` keeps the message as it is. channels deep-copies each message to imitate a
      network layer; what travels here is committed events' JSON, which every receiver
      (the hub, and through it every stream) only reads.
    - A receiver on the layer's own loop (the hub) may take its channel's messages as
      calls (`add_receiver`) instead of awaiting `receive`: the group decides who gets
      what as for any member, and a message costs a call, not a queue, a future and a
      task step. Other members get theirs through their queues as before.
    - Expired messages and memberships are swept at most once a second, not on every
      send and receive; names are checked once each; `receive` makes no queue it does
      not need.
    """

    _swept = 0.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._receivers: dict[str, tuple[asyncio.AbstractEventLoop, Receiver]] = {}
        self._valid_groups: set[str] = set()
        self._valid_channels: set[str] = set()

    def add_receiver(self, channel: str, receiver: Receiver) -> None:
        """`receiver(message)` for each message sent to `channel`, on the running loop:
        in the sender's own call when it sends from that loop (so the receiver must be
        quick and never raise), else scheduled there."""
        self.require_valid_channel_name(channel)
        self._receivers[channel] = (asyncio.get_running_loop(), receiver)

    def remove_receiver(self, channel: str) -> None:
        self._receivers.pop(channel, None)

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept >= CLEAN_EVERY_SECONDS:
            self._swept = now
            super()._clean_expired()

    def require_valid_group_name(self, name: str) -> bool:
        if name not in self._valid_groups:
            super().require_valid_group_name(name)  # raises when it is not
            self._valid_groups.add(name)
        return True

    def require_valid_channel_name(self, name: str, receive: bool = False) -> bool:
        if receive or name not in self._valid_channels:
            super().require_valid_channel_name(name, receive)  # raises when it is not
            if not receive and len(self._valid_channels) < VALID_NAMES_KEPT:
                self._valid_channels.add(name)  # valid to send to (receiving checks more)
        return True

    def _queue(self, channel: str) -> asyncio.Queue[tuple[float, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[float, dict[str, Any]]] | None = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    def send_nowait(self, channel: str, message: Mapping[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        if (found := self._receivers.get(channel)) is not None:
            loop, receiver = found
            if loop.is_closed():  # its hub went with its loop (tests run a loop each)
                self._receivers.pop(channel, None)
            elif asyncio._get_running_loop() is loop:  # None off any loop
                receiver(message)
            else:
                loop.call_soon_threadsafe(receiver, message)
            return
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, message))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self.send_nowait(channel, message)

    def group_send_nowait(self, group: str, message: Mapping[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:  # noqa: SIM105 (a `with` costs a call per member here)
                self.send_nowait(channel, message)
            except ChannelFull:
                pass  # as channels does: a full channel misses the message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.group_send_nowait(group, message)

    async def flush(self) -> None:
        await super().flush()
        self._receivers = {}

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        queue = self._queue(channel)
        try:
            _, message = await queue.get()
        finally:
            if queue.empty() and not any(channel in g for g in self.groups.values()):
                self.channels.pop(channel, None)  # a member keeps its queue between messages
        return message
