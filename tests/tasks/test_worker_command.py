"""`manage.py worker`: refuses to run without REDIS_URL; its events reach the Redis channel
layer; SIGTERM stops it cleanly."""

import asyncio
import subprocess
import sys

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command

from events.publish import EVENTS_GROUP
from tests.conftest import REDIS_URL
from tests.factories import make_task
from tests.servers import ROOT, WorkerProcess, process_env


def _manage_worker(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "worker", *argv],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_without_redis_it_explains_in_one_line_and_exits_non_zero() -> None:
    done = _manage_worker()
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("CommandError: REDIS_URL is not set: this worker's events")
    assert "could not reach the server" in lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--concurrency", "0"], "--concurrency must be more than 0, got '0'"),
        (["--concurrency", "two"], "--concurrency must be a number, got 'two'"),
        (["--lease", "inf"], "--lease must be more than 0, got 'inf'"),
        (["--poll", "nan"], "--poll must be more than 0, got 'nan'"),
    ],
)
def test_bad_options_are_refused_in_one_line(settings, argv, message) -> None:
    settings.REDIS_URL = REDIS_URL
    with pytest.raises(CommandError) as refused:
        call_command("worker", *argv)
    assert str(refused.value) == message


@pytest.mark.redis
@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_its_events_reach_the_redis_layer_and_sigterm_stops_it(
    redis_channel_layer, channel_layer_prefix
) -> None:
    layer = redis_channel_layer
    channel = await layer.new_channel()
    await layer.group_add(EVENTS_GROUP, channel)
    env = process_env(REDIS_URL=REDIS_URL, CHANNEL_LAYER_PREFIX=channel_layer_prefix)
    worker = await sync_to_async(WorkerProcess(env=env).start)()
    try:
        task = await sync_to_async(make_task)(kwargs={"steps": 1, "delay": 0})
        seen = []
        async with asyncio.timeout(30):
            while ("execution.status", "succeeded") not in seen:
                message = await layer.receive(channel)
                event = message["event"]
                if event["task_id"] == task.pk:
                    seen.append((event["type"], event["data"].get("to")))
        assert ("step.completed", None) in seen
        assert ("execution.status", "running") in seen
    finally:
        code = await sync_to_async(worker.stop)()
        await layer.group_discard(EVENTS_GROUP, channel)
    assert code == 0
    assert "stopped" in worker.output.splitlines()[-1]
