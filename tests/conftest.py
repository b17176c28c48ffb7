import socket

import pytest
from django.conf import settings


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


REDIS_UP = _answers("127.0.0.1", 6379)
POSTGRES_UP = _answers("127.0.0.1", 5432)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.TEST_POSTGRES and not POSTGRES_UP:
        skip = pytest.mark.skip(reason="SKIPPED LOUDLY: no PostgreSQL answers at 127.0.0.1:5432")
        for item in items:
            item.add_marker(skip)
    if not REDIS_UP:
        skip = pytest.mark.skip(reason="SKIPPED LOUDLY: no Redis answers at 127.0.0.1:6379")
        for item in items:
            if "redis" in item.keywords:
                item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    db = settings.DATABASES["default"]
    return [
        f"database: {db['ENGINE'].rsplit('.', 1)[-1]} "
        f"({'PostgreSQL pass' if settings.TEST_POSTGRES else 'embedded default'})",
        f"redis at 127.0.0.1:6379: {'yes' if REDIS_UP else 'NO - redis tests skip'}",
        f"postgresql at 127.0.0.1:5432: {'yes' if POSTGRES_UP else 'NO - postgres pass skips'}",
    ]


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def channel_layer_prefix() -> str:
    """A channel-layer key prefix of this test's own, so concurrent runs never meet."""
    import uuid

    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_channel_layer(settings, channel_layer_prefix: str):
    """Switch this process to the channels-redis layer (a real Redis) for one test."""
    from channels.layers import channel_layers

    settings.REDIS_URL = REDIS_URL
    from config.settings import redis_channel_layer as layer_config

    settings.CHANNEL_LAYERS = {"default": layer_config(REDIS_URL, prefix=channel_layer_prefix)}
    channel_layers.backends.clear()
    yield channel_layers["default"]
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    """Each test starts with new channel-layer instances (no messages left over)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _close_connections_of_sync_to_async_thread():
    """Async tests reach the database through sync_to_async's one shared thread, whose
    connection would otherwise outlive the test and block dropping the test database."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(django_user_model):
    """alice, who operates the dashboard: she sees and acts on every task (view_all and
    manage_all), as the tasks made on the command line (the system's) need, but is not
    staff. The access tests (tests/access/) make their own users for each role."""
    from django.contrib.auth.models import Permission

    alice = django_user_model.objects.create_user("alice", "alice@example.com", PASSWORD)
    alice.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="tasks", codename__in=["view_all_tasks", "manage_all_tasks"]
        )
    )
    return alice


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def start_server():
    """Start real servers in subprocesses; all are stopped after the test.

    Use with `transactional_db` so that the server sees what the test commits.
    """
    from tests.servers import ServerProcess

    started: list[ServerProcess] = []

    def start(kind: str = "daphne", **kwargs) -> ServerProcess:
        server = ServerProcess(kind, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
