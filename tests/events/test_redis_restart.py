"""Redis restarted mid-stream: no event is lost once it is back (the log fills the hole
and the hub joins the layer again)."""

import re
import shutil

import httpx
import pytest
from channels.layers import channel_layers

from events.models import Event
from tasks.states import Status
from tests.events.redis_server import RedisServer
from tests.factories import make_execution
from tests.servers import process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def own_redis(settings, channel_layer_prefix):
    if shutil.which("redis-server") is None:
        pytest.skip("SKIPPED LOUDLY: no redis-server binary to start a private Redis")
    redis = RedisServer().start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis.url, "max_connections": 20, "socket_timeout": 15}],
                "prefix": channel_layer_prefix,
            },
        }
    }
    channel_layers.backends.clear()
    yield redis
    channel_layers.backends.clear()
    redis.kill()


def layer_received(url: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    match = re.search(r'^taskstream_events_received_total\{source="layer"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_no_event_is_lost_across_a_redis_restart(
    start_server, own_redis, channel_layer_prefix, login, open_streams, kind
) -> None:
    env = process_env(
        REDIS_URL=own_redis.url,
        CHANNEL_LAYER_PREFIX=channel_layer_prefix,
        METRICS_TOKEN=TOKEN,
        EVENTS_SAFETY_TICK_SECONDS="0.5",
    )
    server = start_server(kind, env=env)
    stream = open_streams(server.url, cookies=login(server))
    stream.wait(lambda s: s.frames)
    before = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    make_execution(Status.SUCCEEDED)
    stream.wait(
        stream.has_ids(list(Event.objects.filter(id__gt=before).values_list("id", flat=True)))
    )

    own_redis.kill()
    make_execution(Status.FAILED)  # published into the void: only the log has these
    own_redis.start()
    channel_layers.backends.clear()  # this process's layer reconnects too
    make_execution(Status.CANCELLED)

    log = [e.as_dict() for e in Event.objects.filter(id__gt=before).order_by("id")]
    stream.wait(stream.has_ids([e["id"] for e in log]), timeout=60)
    assert stream.events() == log
    assert not [f for f in stream.frames if f.event == "reset"]

    # The hub is back on the layer: new events arrive through Redis again (it rejoins
    # after a back-off, so produce until one comes that way; each round waits on a real
    # event reaching the stream).
    seen = layer_received(server.url)
    for _ in range(60):
        after = Event.objects.order_by("-id").values_list("id", flat=True).first()
        make_execution(Status.CANCELLED)
        fresh = list(Event.objects.filter(id__gt=after).values_list("id", flat=True))
        stream.wait(stream.has_ids(fresh), timeout=60)
        if layer_received(server.url) > seen:
            break
    assert layer_received(server.url) > seen
    ids = stream.ids()
    assert ids == sorted(set(ids))
