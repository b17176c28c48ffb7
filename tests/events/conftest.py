import pytest

from tests.conftest import PASSWORD, REDIS_URL
from tests.servers import login_cookies, process_env


@pytest.fixture
def redis_env(redis_channel_layer, channel_layer_prefix):
    """Environment for a server on the same Redis layer as this test process."""

    def env(**extra: str) -> dict[str, str]:
        return process_env(REDIS_URL=REDIS_URL, CHANNEL_LAYER_PREFIX=channel_layer_prefix, **extra)

    return env


@pytest.fixture
def login(user):
    """Cookies of a logged-in session (user alice) on a running server."""

    def log_in(server, username: str = "alice") -> dict[str, str]:
        return login_cookies(server.url, username, PASSWORD)

    return log_in


@pytest.fixture
def open_streams():
    """Streams opened by a test; all are closed after it."""
    from tests.events.sse_client import Stream

    opened: list[Stream] = []

    def open_stream(*args, **kwargs) -> Stream:
        stream = Stream(*args, **kwargs)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


@pytest.fixture
def follow():
    """Followers (a reconnecting client, see sse_client.Follower) started by a test; all
    are closed after it."""
    from tests.events.sse_client import Follower

    started: list[Follower] = []

    def start(*args, **kwargs) -> Follower:
        follower = Follower(*args, **kwargs)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.close()
