"""Bench-only machinery that runs inside a Django process (server or producer).

- a process-wide query counter (an execute_wrapper on every new connection), so a
  benchmark can read how many queries the server ran while streams sat idle;
- the producer: real transitions (or task creations) at a fixed rate through the real
  services, recording the moment each event's transaction committed (the on-commit
  publish hands it to a local listener right after COMMIT);
- with django-eventstream installed (bench.es_settings), a bridge that hands every
  published event to `django_eventstream.send_event`, so both stacks serve the same
  events from the same transitions.
"""

from __future__ import annotations

import resource
import threading
import time
from typing import Any

from django.db.backends.signals import connection_created

_query_lock = threading.Lock()
_queries = 0
_local = threading.local()


def raise_nofile_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _count(execute, sql, params, many, context):
    global _queries
    if not getattr(_local, "uncounted", False):
        with _query_lock:
            _queries += 1
    return execute(sql, params, many, context)


def _on_connection(sender, connection, **kwargs) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def install_query_counter() -> None:
    connection_created.connect(_on_connection, dispatch_uid="bench-query-counter")


def queries() -> int:
    return _queries


def last_event_id() -> int:
    """The newest event id, read without counting the query (the bench asked, not a page)."""
    from django.db import connection

    from events.api import last_event_id as newest

    _local.uncounted = True
    try:
        return newest()
    finally:
        _local.uncounted = False
        connection.close()


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class CommitRecorder:
    """Collects (event id, commit time, type, title, task id) for every event published here."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, str, str | None, int | None]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        data = event.get("data") or {}
        row = (event["id"], time.time(), event["type"], data.get("title"), event.get("task_id"))
        with self._lock:
            self.rows.append(row)


def produce(
    *,
    kind: str,
    rate: float,
    count: int,
    execution_ids: list[int] | None = None,
    prefix: str = "bench-act-",
    offset: int = 0,
) -> dict[str, Any]:
    """Run `count` operations at `rate` per second (0: as fast as possible).

    kind "transition": flip the given executions between running and waiting_for_input,
    round robin (each flip commits an execution.status and a task.status event).
    kind "create": create tasks titled prefix+(offset+i) (task.created, execution.created).
    Returns the commit times of every event published meanwhile, and the achieved rate.
    """
    from events.publish import add_local_listener, remove_local_listener
    from tasks.models import Execution
    from tasks.services import task_create
    from tasks.states import Status

    _local.uncounted = True  # the producer's own queries are not the server's cost
    recorder = CommitRecorder()
    add_local_listener(recorder)
    executions = []
    if kind == "transition":
        executions = list(Execution.objects.filter(pk__in=execution_ids or []))
        if not executions:
            raise ValueError("kind 'transition' needs execution_ids of existing executions")
    elif kind != "create":
        raise ValueError(f"unknown producer kind {kind!r}")
    late = 0.0
    start = time.perf_counter()
    try:
        for i in range(count):
            if rate > 0:
                due = start + i / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                else:
                    late = max(late, -wait)
            if kind == "transition":
                execution = executions[i % len(executions)]
                to = (
                    Status.WAITING_FOR_INPUT
                    if execution.status == Status.RUNNING
                    else Status.RUNNING
                )
                execution.transition(to, prompt="bench" if to == Status.WAITING_FOR_INPUT else "")
            else:
                task_create(title=f"{prefix}{offset + i}")
    finally:
        elapsed = time.perf_counter() - start
        remove_local_listener(recorder)
        _local.uncounted = False
    return {
        "ops": count,
        "seconds": elapsed,
        "rate": count / elapsed if elapsed else 0.0,
        "max_late_s": late,
        "events": recorder.rows,
    }


def install_eventstream_bridge() -> None:
    """Hand every event published in this process to django-eventstream as well."""
    from django_eventstream import send_event

    from events.publish import add_local_listener

    def bridge(event: dict) -> None:
        send_event("events", event["type"], event)

    add_local_listener(bridge)
