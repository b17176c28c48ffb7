"""Writes about worker processes: register, heartbeat, stop, and find the lost ones.

Every worker (`manage.py worker`, and the one inside `serve`) has a Worker row kept alive by
its heartbeat: each beat pushes `expires_at` to now plus the worker's own lease. A worker
whose row expired (it was killed, its host died) is marked lost by whichever process runs a
reaper next (any worker, any `serve`), once, with a `worker.lost` event.

Event audience: worker.* events concern no task; the contract shows them to staff and
view_all_tasks holders only. They are emitted here with no task, and so (on the access
branch) an empty audience reaches only subscribers granted everything; staff need an
audience token of their own (see the report to the lead: `audience=" staff "`).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from events.api import event_emit
from tasks import event_types as types
from tasks.access import workers_audience
from tasks.models import Worker


def worker_register(
    *, worker_id: str, kind: str, host: str, pid: int, concurrency: int, lease_seconds: float
) -> Worker:
    """A worker starts: its row, and `worker.started`."""
    now = timezone.now()
    with transaction.atomic():
        worker, _ = Worker.objects.update_or_create(
            worker_id=worker_id,
            defaults={
                "kind": kind,
                "host": host[:255],
                "pid": pid,
                "concurrency": concurrency,
                "state": Worker.State.RUNNING,
                "started_at": now,
                "last_seen_at": now,
                "expires_at": now + timedelta(seconds=lease_seconds),
                "stopped_at": None,
                "reason": "",
            },
        )
        event_emit(type=types.WORKER_STARTED, data=worker.as_payload(), audience=workers_audience())
    return worker


def worker_heartbeat(*, worker_id: str, lease_seconds: float) -> bool:
    """The worker is alive: push its expiry forward. A worker that had been given up as
    lost (a long pause) comes back with a new `worker.started`. False if it has no row."""
    now = timezone.now()
    alive = Worker.objects.filter(worker_id=worker_id, state=Worker.State.RUNNING).update(
        last_seen_at=now, expires_at=now + timedelta(seconds=lease_seconds)
    )
    if alive:
        return True
    with transaction.atomic():
        back = Worker.objects.filter(worker_id=worker_id, state=Worker.State.LOST).update(
            state=Worker.State.RUNNING,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=lease_seconds),
            stopped_at=None,
            reason="",
        )
        if not back:
            return False
        worker = Worker.objects.get(worker_id=worker_id)
        event_emit(type=types.WORKER_STARTED, data=worker.as_payload(), audience=workers_audience())
    return True


def worker_stop(*, worker_id: str) -> bool:
    """The worker shut down cleanly: `worker.stopped`, once."""
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Worker.objects.filter(worker_id=worker_id)
            .exclude(state=Worker.State.STOPPED)
            .update(state=Worker.State.STOPPED, stopped_at=now, last_seen_at=now, reason="")
        )
        if not changed:
            return False
        worker = Worker.objects.get(worker_id=worker_id)
        event_emit(type=types.WORKER_STOPPED, data=worker.as_payload(), audience=workers_audience())
    return True


def workers_reap() -> int:
    """Mark every running worker whose heartbeat ran out as lost, each with one
    `worker.lost` (a conditional update decides, so two reapers never both report it)."""
    now = timezone.now()
    lost = 0
    expired = Worker.objects.filter(state=Worker.State.RUNNING, expires_at__lt=now)
    for worker in list(expired[:100]):
        silent = (now - worker.last_seen_at).total_seconds()
        reason = f"no heartbeat for {silent:.0f}s"
        with transaction.atomic():
            taken = Worker.objects.filter(
                pk=worker.pk, state=Worker.State.RUNNING, expires_at__lt=now
            ).update(state=Worker.State.LOST, stopped_at=now, reason=reason)
            if not taken:
                continue
            event_emit(
                type=types.WORKER_LOST,
                data={**worker.as_payload(), "reason": reason},
                audience=workers_audience(),
            )
        lost += 1
    return lost
