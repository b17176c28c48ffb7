"""Open streams per user, counted across every server process (EVENTS_MAX_STREAMS_PER_USER).

Without REDIS_URL there is one process, and a dict counts. With it, each user has a Redis
sorted set of the streams open anywhere: member = one stream, score = when its lease
runs out. A process renews the leases of its streams every third of
EVENTS_STREAM_LEASE_SECONDS, so the slots of a process that died (kill -9, a lost host)
free themselves when their lease runs out instead of leaking. Times come from Redis's own
clock (TIME inside the scripts), so hosts whose clocks differ agree.

When Redis does not answer, a stream is counted by this process alone (logged): a Redis
blip must not close every dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS[1] the user's set; ARGV: cap, member, lease seconds. 1 when taken, 0 when full.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""
# KEYS: users' sets; ARGV[1] lease seconds, ARGV[i+1] the member held in KEYS[i].
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[1])) + 1)
end
return #KEYS
"""


@dataclass(frozen=True)
class Slot:
    user_id: int | None
    member: str  # "" when counted by this process only


class StreamSlots:
    """Per-process counting (no Redis)."""

    def __init__(self) -> None:
        self._local: dict[int | None, int] = {}

    def held(self, user_id: int | None) -> int:
        return self._local.get(user_id, 0)

    def _take_local(self, user_id: int | None, cap: int) -> Slot | None:
        if self._local.get(user_id, 0) >= cap:
            return None
        self._local[user_id] = self._local.get(user_id, 0) + 1
        return Slot(user_id, "")

    def _give_local(self, slot: Slot) -> None:
        left = self._local.get(slot.user_id, 1) - 1
        if left > 0:
            self._local[slot.user_id] = left
        else:
            self._local.pop(slot.user_id, None)

    async def acquire(self, user_id: int | None) -> Slot | None:
        """A slot for one more stream of `user_id`, or None when the user has
        EVENTS_MAX_STREAMS_PER_USER open already."""
        return self._take_local(user_id, settings.EVENTS_MAX_STREAMS_PER_USER)

    def release(self, slot: Slot) -> None:
        """Free a slot (sync: called from a stream's cleanup, in the hub's loop)."""
        self._give_local(slot)

    async def keep_alive(self) -> None:
        """Renew the leases of this process's slots until cancelled (Redis only)."""

    async def aclose(self) -> None:
        self._local.clear()


class RedisStreamSlots(StreamSlots):
    """Counting across processes in Redis sorted sets, with leases."""

    def __init__(self, url: str, prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        from redis.asyncio import Redis

        self.loop = loop
        self.prefix = prefix
        self.redis: Any = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renew = self.redis.register_script(_RENEW)
        self._held: dict[str, Slot] = {}  # member -> slot, taken in Redis by this process
        self._releases: set[asyncio.Task[None]] = set()

    def key(self, user_id: int | None) -> str:
        return f"{self.prefix}:streams:{user_id}"

    def held(self, user_id: int | None) -> int:
        here = sum(1 for slot in self._held.values() if slot.user_id == user_id)
        return here + super().held(user_id)

    async def acquire(self, user_id: int | None) -> Slot | None:
        cap = settings.EVENTS_MAX_STREAMS_PER_USER
        member = uuid.uuid4().hex
        try:
            taken = await self._acquire(
                keys=[self.key(user_id)],
                args=[cap, member, settings.EVENTS_STREAM_LEASE_SECONDS],
            )
        except Exception as exc:
            logger.warning("stream slots: Redis failed (%s); counting in this process", exc)
            return self._take_local(user_id, cap)
        if not taken:
            return None
        slot = Slot(user_id, member)
        self._held[member] = slot
        return slot

    def release(self, slot: Slot) -> None:
        if not slot.member:
            self._give_local(slot)
            return
        if self._held.pop(slot.member, None) is None:
            return
        if self.loop.is_closed():
            return  # the lease frees it
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._spawn_remove(slot)
        else:  # a stream body collected in another thread
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._spawn_remove, slot)

    def _spawn_remove(self, slot: Slot) -> None:
        task = self.loop.create_task(self._remove(slot))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _remove(self, slot: Slot) -> None:
        try:
            await self.redis.zrem(self.key(slot.user_id), slot.member)
        except Exception as exc:
            logger.warning("stream slots: could not free a slot (%s); its lease will", exc)

    async def renew(self) -> int:
        held = list(self._held.values())
        if not held:
            return 0
        keys = [self.key(slot.user_id) for slot in held]
        args: list[Any] = [settings.EVENTS_STREAM_LEASE_SECONDS, *(s.member for s in held)]
        renewed: int = await self._renew(keys=keys, args=args)
        return renewed

    async def keep_alive(self) -> None:
        while True:
            await asyncio.sleep(settings.EVENTS_STREAM_LEASE_SECONDS / 3)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("stream slots: renewing leases failed (%s)", exc)

    async def aclose(self) -> None:
        for task in list(self._releases):
            with contextlib.suppress(Exception):
                await task
        held, self._held = list(self._held.values()), {}
        if held:
            with contextlib.suppress(Exception):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for slot in held:
                        pipe.zrem(self.key(slot.user_id), slot.member)
                    await pipe.execute()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await super().aclose()


def _layer_prefix() -> str:
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {})
    return str(layer.get("CONFIG", {}).get("prefix", "asgi"))


def slots_for(loop: asyncio.AbstractEventLoop) -> StreamSlots:
    """Redis-backed slots when REDIS_URL is set, else per-process ones."""
    url = getattr(settings, "REDIS_URL", "")
    if url:
        return RedisStreamSlots(url, _layer_prefix(), loop)
    return StreamSlots()
