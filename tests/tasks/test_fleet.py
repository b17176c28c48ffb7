"""Worker rows: registered at start, kept alive by heartbeats, stopped cleanly, or found
lost by a reaper once their heartbeat runs out; each change is one worker.* event with the
contract's payload."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Event
from tasks import ops
from tasks.fleet import worker_heartbeat, worker_register, worker_stop, workers_reap
from tasks.models import Worker
from tests.factories import make_task
from tests.tasks.engine import in_process_worker, wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _register(worker_id: str = "h:1:a", lease: float = 30) -> Worker:
    return worker_register(
        worker_id=worker_id, kind="worker", host="h", pid=1, concurrency=4, lease_seconds=lease
    )


def worker_events() -> list[tuple[str, dict]]:
    return list(
        Event.objects.filter(type__startswith="worker.").order_by("id").values_list("type", "data")
    )


def test_register_heartbeat_and_stop_each_say_so_once() -> None:
    worker = _register()
    assert worker.state == Worker.State.RUNNING and worker.is_alive(timezone.now())
    payload = {"worker_id": "h:1:a", "host": "h", "pid": 1, "concurrency": 4}
    assert worker_events() == [("worker.started", payload)]
    Worker.objects.filter(pk=worker.pk).update(last_seen_at=timezone.now() - timedelta(hours=1))
    assert worker_heartbeat(worker_id="h:1:a", lease_seconds=30)
    worker.refresh_from_db()
    assert timezone.now() - worker.last_seen_at < timedelta(minutes=1)
    assert worker_stop(worker_id="h:1:a") is True
    assert worker_stop(worker_id="h:1:a") is False  # once
    assert worker_events() == [("worker.started", payload), ("worker.stopped", payload)]
    assert Event.objects.filter(type__startswith="worker.", task_id__isnull=False).count() == 0


def test_a_silent_worker_is_lost_once_with_a_reason() -> None:
    worker = _register(lease=30)
    assert workers_reap() == 0  # alive
    Worker.objects.filter(pk=worker.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1),
        last_seen_at=timezone.now() - timedelta(seconds=31),
    )
    assert not ops.workers_alive()
    assert workers_reap() == 1
    assert workers_reap() == 0  # a second reaper finds nothing
    worker.refresh_from_db()
    assert worker.state == Worker.State.LOST and worker.reason == "no heartbeat for 31s"
    lost = Event.objects.get(type="worker.lost")
    assert lost.data == {
        "worker_id": "h:1:a",
        "host": "h",
        "pid": 1,
        "concurrency": 4,
        "reason": "no heartbeat for 31s",
    }


def test_a_lost_worker_that_beats_again_is_back() -> None:
    worker = _register()
    Worker.objects.filter(pk=worker.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    workers_reap()
    assert worker_heartbeat(worker_id="h:1:a", lease_seconds=30)
    worker.refresh_from_db()
    assert worker.state == Worker.State.RUNNING and worker.reason == ""
    assert [t for t, _ in worker_events()] == ["worker.started", "worker.lost", "worker.started"]
    assert worker_heartbeat(worker_id="nobody", lease_seconds=30) is False


def test_the_banner_needs_pending_work_and_no_live_worker(user) -> None:
    assert not ops.chrome_for(user).banner  # nothing pending
    make_task(created_by=user)
    assert ops.chrome_for(user).banner
    worker = _register()
    assert not ops.chrome_for(user).banner
    worker_stop(worker_id=worker.worker_id)
    assert ops.chrome_for(user).banner


@pytest.mark.django_db(transaction=True)
def test_the_engine_registers_beats_and_stops() -> None:
    with in_process_worker(lease_seconds=0.6) as worker:
        row = wait_for(lambda: Worker.objects.filter(worker_id=worker.id).first(), what="row")
        assert (row.kind, row.concurrency) == ("worker", worker.config.concurrency)
        first_seen = row.last_seen_at
        wait_for(
            lambda: Worker.objects.filter(
                worker_id=worker.id, last_seen_at__gt=first_seen
            ).exists(),
            what="a heartbeat",
        )
    row = Worker.objects.get(worker_id=worker.id)
    assert row.state == Worker.State.STOPPED and row.stopped_at is not None
    assert [t for t, _ in worker_events()] == ["worker.started", "worker.stopped"]


@pytest.mark.django_db(transaction=True)
def test_another_workers_reaper_finds_a_dead_one() -> None:
    dead = _register("dead:9:x", lease=0.2)
    with in_process_worker(lease_seconds=3):
        wait_for(
            lambda: Worker.objects.filter(pk=dead.pk, state=Worker.State.LOST).exists(),
            what="the dead worker to be marked lost",
        )
    assert Event.objects.filter(type="worker.lost", data__worker_id="dead:9:x").count() == 1
