"""Heartbeat comments on an idle stream, then `end` after the lifetime, then close."""

import pytest

from tests.servers import process_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_idle_stream_gets_keepalives_then_end_then_closes(
    start_server, login, open_streams, kind
) -> None:
    env = process_env(EVENTS_HEARTBEAT_SECONDS="0.2", EVENTS_STREAM_MAX_SECONDS="1.5")
    server = start_server(kind, env=env)
    stream = open_streams(server.url, cookies=login(server))
    stream.wait(lambda s: s.closed_by_server, timeout=30)
    frames = stream.frames
    assert frames[0].retry is not None
    keepalives = [f for f in frames if "keepalive" in f.comments]
    assert len(keepalives) >= 2
    assert frames[-1].event == "end"
    assert [f.event for f in frames if f.data] == ["end"]
