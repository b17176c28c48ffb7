"""Helpers for the execution-engine tests: run the real claim/run code, wait on conditions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.tasks import task

from events.models import Event
from tasks.engine.worker import Worker, WorkerConfig, execution_run
from tasks.services import executions_claim


def wait_for[T](check: Callable[[], T], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll `check` (a database read) until it returns something truthy, or fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)  # poll interval of a deadline wait, not synchronisation


def run_runnable(worker_id: str = "test-worker") -> list[tuple[int, str]]:
    """Claim every runnable execution and run each to its next stop, in this thread."""
    outcomes = []
    for execution_id in executions_claim(worker_id=worker_id, limit=100, lease_seconds=30):
        outcome = execution_run(
            execution_id=execution_id, worker_id=worker_id, stopping=threading.Event()
        )
        outcomes.append((execution_id, outcome))
    return outcomes


def events_of(execution_id: int, *types: str) -> list[Event]:
    qs = Event.objects.filter(execution_id=execution_id).order_by("id")
    if types:
        qs = qs.filter(type__in=types)
    return list(qs)


@contextmanager
def in_process_worker(**overrides) -> Iterator[Worker]:
    """The worker `serve` runs, as threads of this test process (needs transactional tests)."""
    defaults = {"poll_seconds": 0.05, "lease_seconds": 5.0, "shutdown_seconds": 5.0}
    worker = Worker(WorkerConfig.from_settings(**{**defaults, **overrides})).start()
    try:
        yield worker
    finally:
        worker.shutdown()


# Test-only task functions, addressed by dotted path like any user's.
RELEASE = threading.Event()


@task(takes_context=True)
def stubborn(context):
    """Ignores cancellation: no checkpoint until the test releases it."""
    with context.step("block"):
        RELEASE.wait(30)
    return "released"


@task
def add(a: int, b: int) -> int:
    return a + b


@task(takes_context=True)
def crash_outside_steps(context):
    context.log("about to fail")
    raise KeyError("missing")


@task(takes_context=True)
def two_questions(context):
    with context.step("first"):
        colour = context.ask("Colour?")
    size = context.ask("Size?")
    return {"colour": colour, "size": size, "attempt": context.attempt}


@task(takes_context=True)
def forgiving(context):
    """Catches its own failing step, then asks: the re-run meets the failed step again."""
    try:
        with context.step("flaky"):
            raise OSError("disk hiccup")
    except OSError:
        context.log("carrying on")
    return context.ask("Still fine?")


@task
def exits():
    raise SystemExit(3)


@task
def nan_result():
    return {"x": float("nan")}


@task(takes_context=True)
def chatty(context, lines: int = 300, fail: bool = False):
    """Bursts of log lines around a step and a progress report; ends (or raises) right
    after its last line."""
    context.log("before the step")
    with context.step("burst"):
        for i in range(lines):
            context.log(f"in {i}")
    context.progress(1, 2, "half")
    for i in range(lines):
        context.log(f"after {i}", level="debug")
    if fail:
        raise ValueError("fails right after logging")
    context.log("last line")
    return lines
