"""Transitions and their events commit together; publishing happens on commit only."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from events import publish as publishing
from events.models import Event
from events.publish import EVENTS_GROUP
from tasks.models import Execution
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


class Rollback(Exception):
    pass


async def _subscribe():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(EVENTS_GROUP, channel)
    return layer, channel


async def _next_event(layer, channel) -> dict:
    message = await asyncio.wait_for(layer.receive(channel), timeout=10)
    assert message["type"] == "event.published"
    return message["event"]


async def _rollback_then_commit_sentinel(layer, channel) -> None:
    """Roll a transition back, then commit another; the first thing received must be
    the committed one: nothing of the rolled-back transaction was published."""
    execution = await sync_to_async(make_execution)(Status.PENDING)
    sentinel = await sync_to_async(make_execution)(Status.PENDING)
    # Drain creation events of both, so that only the transitions below are pending.
    for _ in range(4):
        await _next_event(layer, channel)
    events_before = await Event.objects.acount()

    def roll_back() -> None:
        with transaction.atomic():
            execution.transition(Status.RUNNING)
            raise Rollback

    with pytest.raises(Rollback):
        await sync_to_async(roll_back)()

    assert await Event.objects.acount() == events_before
    assert (await Execution.objects.aget(pk=execution.pk)).status == Status.PENDING

    await sync_to_async(sentinel.transition)(Status.CANCELLED)
    first = await _next_event(layer, channel)
    assert first["execution_id"] == sentinel.pk
    assert first["type"] == "execution.status"


async def _committed_transition_is_received(layer, channel) -> None:
    execution = await sync_to_async(make_execution)(Status.PENDING)
    received = [await _next_event(layer, channel) for _ in range(2)]
    assert [e["type"] for e in received] == ["task.created", "execution.created"]

    await sync_to_async(execution.transition)(Status.RUNNING)
    received = [await _next_event(layer, channel) for _ in range(2)]
    log = await sync_to_async(
        lambda: [
            {**e.as_dict(), "audience": e.audience}
            for e in Event.objects.filter(
                execution_id=execution.pk, type__endswith=".status"
            ).order_by("id")
        ]
    )()
    assert received == log
    assert received[0]["data"] == {"from": "pending", "to": "running"}
    # The contract's fields, and the audience the hubs match grants against (streams
    # leave it out of their frames).
    assert set(received[0]) == {"id", "type", "at", "task_id", "execution_id", "data", "audience"}


@pytest.mark.asyncio
async def test_rollback_leaves_no_state_no_event_and_publishes_nothing_in_memory() -> None:
    layer, channel = await _subscribe()
    await _rollback_then_commit_sentinel(layer, channel)


@pytest.mark.asyncio
async def test_committed_transition_reaches_the_in_memory_layer() -> None:
    layer, channel = await _subscribe()
    await _committed_transition_is_received(layer, channel)


@pytest.mark.redis
@pytest.mark.asyncio
async def test_committed_transition_reaches_redis(redis_channel_layer) -> None:
    layer, channel = await _subscribe()
    assert type(layer).__name__ == "RedisChannelLayer"
    await _committed_transition_is_received(layer, channel)


@pytest.mark.redis
@pytest.mark.asyncio
async def test_rollback_publishes_nothing_to_redis(redis_channel_layer) -> None:
    layer, channel = await _subscribe()
    await _rollback_then_commit_sentinel(layer, channel)


def test_publish_failure_never_reaches_the_caller(settings, caplog) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Nothing listens on port 1: every publish fails.
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:1/0", "max_connections": 2}]},
        }
    }
    execution = make_execution(Status.PENDING)
    execution.transition(Status.RUNNING)
    assert publishing.flush(timeout=30)

    execution.refresh_from_db()
    assert execution.status == Status.RUNNING
    assert Event.objects.filter(execution_id=execution.pk, type="execution.status").exists()
    assert "streams will read it from the log" in caplog.text
