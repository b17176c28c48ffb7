"""The worker: claims executions, runs their task functions in threads, keeps their leases
alive, reaps what lost workers left behind.

One `Worker` runs in `manage.py worker` (its own process, any number of them against one
database) and one inside `manage.py serve` (threads beside daphne, the embedded default).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connections
from django.tasks.signals import task_finished, task_started
from django.utils.json import normalize_json

from tasks import runnable
from tasks.bounds import json_clean, text_clean
from tasks.engine.backend import DatabaseBackend, execution_result
from tasks.engine.context import (
    CancelRequested,
    ExecutionContext,
    InputRequired,
    LeaseLost,
    RunState,
    WorkerStopping,
    error_text,
)
from tasks.fleet import worker_heartbeat, worker_register, worker_stop, workers_reap
from tasks.models import Execution
from tasks.registry import task_function_listed, task_function_resolve
from tasks.services import (
    execution_finish,
    execution_recover,
    executions_claim,
    executions_lease_renew,
    executions_reap,
)
from tasks.states import Status, TaskInputError, TransitionNotAllowed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int
    lease_seconds: float
    poll_seconds: float
    cancel_grace_seconds: float
    shutdown_seconds: float

    @classmethod
    def from_settings(
        cls,
        *,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        cancel_grace_seconds: float | None = None,
        shutdown_seconds: float | None = None,
    ) -> WorkerConfig:
        """The settings' WORKER_*, each overridden when given (not None)."""
        return cls(
            concurrency=settings.WORKER_CONCURRENCY if concurrency is None else concurrency,
            lease_seconds=settings.WORKER_LEASE_SECONDS if lease_seconds is None else lease_seconds,
            poll_seconds=settings.WORKER_POLL_SECONDS if poll_seconds is None else poll_seconds,
            cancel_grace_seconds=(
                settings.WORKER_CANCEL_GRACE_SECONDS
                if cancel_grace_seconds is None
                else cancel_grace_seconds
            ),
            shutdown_seconds=(
                settings.WORKER_SHUTDOWN_SECONDS if shutdown_seconds is None else shutdown_seconds
            ),
        )


def worker_id_new() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Claims up to `concurrency` executions at a time and runs each in its own thread.

    Its Worker row (tasks.fleet) says it is alive: registered at start, a heartbeat every
    third of the lease, stopped at shutdown; its reaper also marks lost workers."""

    def __init__(
        self, config: WorkerConfig, *, worker_id: str | None = None, kind: str = "worker"
    ) -> None:
        self.config = config
        self.kind = kind
        self.id = worker_id or worker_id_new()
        self._stop = threading.Event()  # stop claiming
        self._stopping = threading.Event()  # interrupt running functions at checkpoints
        self._wake = threading.Event()
        self._active: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Worker:
        """Run in background threads (inside `serve`)."""
        runnable.listen(self._wake.set)
        self._register()
        self._spawn(self._claim_loop, "worker-claim")
        self._spawn(self._heartbeat_loop, "worker-heartbeat")
        return self

    def run(self) -> None:
        """Run in the calling thread until `request_stop()`, then shut down."""
        self._register()
        self._spawn(self._heartbeat_loop, "worker-heartbeat")
        self._claim_loop()
        self.shutdown()

    def request_stop(self) -> None:
        """Stop claiming (safe to call from a signal handler)."""
        self._stop.set()
        self._wake.set()

    def shutdown(self) -> None:
        """Stop claiming; let running executions finish for `shutdown_seconds`, then
        interrupt them at their next checkpoint and release them (failed "worker stopped",
        retried while attempts remain); whatever still hangs is released by force."""
        self.request_stop()
        runnable.unlisten(self._wake.set)
        for thread in self._threads:
            if thread.name == "worker-claim" and thread is not threading.current_thread():
                thread.join(30)  # no claim may start after we look at what is running
        if not self._wait_idle(self.config.shutdown_seconds) and self._active_ids():
            self._stopping.set()
            if not self._wait_idle(min(5.0, self.config.lease_seconds)):
                for execution_id in self._active_ids():
                    self._release(execution_id)
        self._stopping.set()
        try:
            worker_stop(worker_id=self.id)
        except Exception:
            logger.exception("worker %s: recording the stop failed", self.id)
        connections.close_all()

    def _register(self) -> None:
        try:
            worker_register(
                worker_id=self.id,
                kind=self.kind,
                host=socket.gethostname(),
                pid=os.getpid(),
                concurrency=self.config.concurrency,
                lease_seconds=self.config.lease_seconds,
            )
        except Exception:
            logger.exception("worker %s: registering failed; the heartbeat retries", self.id)
        finally:
            connections.close_all()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _active_ids(self) -> list[int]:
        with self._lock:
            return list(self._active)

    def _wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._active.values())
            if not threads:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            threads[0].join(min(left, 0.5))

    # -- loops -------------------------------------------------------------------------
    def _claim_loop(self) -> None:
        config = self.config
        reap_every = max(config.poll_seconds, min(1.0, config.lease_seconds / 3))
        next_reap = 0.0
        while not self._stop.is_set():
            claimed: list[int] = []
            try:
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + reap_every
                    reap(config)
                free = config.concurrency - len(self._active_ids())
                if free > 0:
                    claimed = executions_claim(
                        worker_id=self.id, limit=free, lease_seconds=config.lease_seconds
                    )
                for execution_id in claimed:
                    self._start_execution(execution_id)
            except Exception:
                logger.exception("worker %s: claiming failed; trying again", self.id)
                connections.close_all()
            if not claimed:
                self._wake.wait(config.poll_seconds)
                self._wake.clear()
        connections.close_all()

    def _heartbeat_loop(self) -> None:
        every = self.config.lease_seconds / 3
        while not self._stopping.wait(every):
            try:
                if not worker_heartbeat(worker_id=self.id, lease_seconds=self.config.lease_seconds):
                    self._register()  # its row is gone (a wiped database): start again
            except Exception:
                logger.exception("worker %s: heartbeat failed", self.id)
                connections.close_all()
            ids = self._active_ids()
            if not ids:
                continue
            try:
                executions_lease_renew(
                    worker_id=self.id, execution_ids=ids, lease_seconds=self.config.lease_seconds
                )
            except Exception:
                logger.exception("worker %s: renewing leases failed", self.id)
                connections.close_all()
        connections.close_all()

    # -- one execution -----------------------------------------------------------------
    def _start_execution(self, execution_id: int) -> None:
        thread = threading.Thread(
            target=self._run_execution, args=(execution_id,), name=f"execution-{execution_id}"
        )
        thread.daemon = True
        with self._lock:
            self._active[execution_id] = thread
        thread.start()

    def _run_execution(self, execution_id: int) -> None:
        try:
            execution_run(execution_id=execution_id, worker_id=self.id, stopping=self._stopping)
        except Exception:
            logger.exception("worker %s: execution %s crashed the runner", self.id, execution_id)
        finally:
            with self._lock:
                # Only our own entry: the execution may have been claimed again already
                # (answered the moment it started waiting), by a thread now running it.
                if self._active.get(execution_id) is threading.current_thread():
                    del self._active[execution_id]
            connections.close_all()
            self._wake.set()  # a slot is free

    def _release(self, execution_id: int) -> None:
        try:
            execution_recover(
                execution_id=execution_id,
                reason="worker stopped before the execution finished",
                worker_id=self.id,
            )
        except Exception:
            logger.exception("worker %s: releasing execution %s failed", self.id, execution_id)


def reap(config: WorkerConfig) -> None:
    """What any worker or server does about once a second: fail the executions of lost
    workers (expired leases), force overdue cancels, and mark lost workers."""
    reaped = executions_reap(cancel_grace_seconds=config.cancel_grace_seconds)
    if reaped:
        logger.warning("reaped executions: %s", reaped)
    lost = workers_reap()
    if lost:
        logger.warning("workers lost: %s", lost)


class Reaper:
    """The reaper alone, for a `serve --no-worker`: a server with no worker of its own still
    notices a worker killed with SIGKILL (worker.lost) and fails what it held."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        every = max(self.config.poll_seconds, min(1.0, self.config.lease_seconds / 3))
        while not self._stop.wait(every):
            try:
                reap(self.config)
            except Exception:
                logger.exception("reaper failed; trying again")
            finally:
                connections.close_all()


def execution_run(*, execution_id: int, worker_id: str, stopping: threading.Event) -> str:
    """Run one claimed execution's task function and record how it ended. Returns the
    status it ended in ("" when it was no longer this worker's)."""
    execution = Execution.objects.select_related("task").get(pk=execution_id)
    task = execution.task
    try:
        # Only what TASK_FUNCTIONS lists runs, whatever path a row holds (an admin edit,
        # a hand-written UPDATE, a setting changed since the task was made).
        task_function_listed(task.function)
        function = task_function_resolve(task.function)
    except TaskInputError as exc:
        return _finish(execution_id, worker_id, Status.FAILED, error=str(exc))
    task_result = execution_result(execution, task=function, backend=function.backend)
    state = RunState(
        execution=execution,
        worker_id=worker_id,
        answers=list(execution.answers),
        stopping=stopping,
    )
    context = ExecutionContext(task_result=task_result, state=state)
    task_started.send(sender=DatabaseBackend, task_result=task_result)
    try:
        try:
            if function.takes_context:
                value = function.call(context, *task.args, **task.kwargs)
            else:
                value = function.call(*task.args, **task.kwargs)
        finally:
            context.log_flush()  # its last lines commit before its end does
        value = json_clean(normalize_json(value))
    except InputRequired as exc:
        outcome = _finish(
            execution_id,
            worker_id,
            Status.WAITING_FOR_INPUT,
            prompt=exc.prompt,
            input_spec=dict(exc.spec),
        )
    except CancelRequested:
        outcome = _finish(execution_id, worker_id, Status.CANCELLED, error="cancelled")
    except LeaseLost:
        logger.warning("execution %s was taken from worker %s", execution_id, worker_id)
        return ""
    except WorkerStopping:
        outcome = (
            execution_recover(
                execution_id=execution_id,
                reason="worker stopped before the execution finished",
                worker_id=worker_id,
            )
            or ""
        )
    except (Exception, SystemExit) as exc:  # sys.exit() in a task fails it, not the worker
        outcome = _finish(
            execution_id,
            worker_id,
            Status.FAILED,
            error=error_text(exc),
            details="".join(traceback.format_exception(exc)),
        )
    else:
        outcome = _finish(execution_id, worker_id, Status.SUCCEEDED, result=value)
    if outcome in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED):
        execution.refresh_from_db()
        task_finished.send(
            sender=DatabaseBackend,
            task_result=execution_result(execution, task=function, backend=function.backend),
        )
    return outcome


def _finish(
    execution_id: int,
    worker_id: str,
    to: str,
    *,
    error: str = "",
    prompt: str = "",
    input_spec: dict[str, Any] | None = None,
    result: Any = None,
    details: str = "",
) -> str:
    """Record the end of a run, if this worker still holds the execution."""
    try:
        finished = execution_finish(
            execution_id=execution_id,
            worker_id=worker_id,
            to=to,
            error=text_clean(error),
            prompt=text_clean(prompt),
            input_spec=input_spec,
            result=result,
            details=details,
        )
    except TransitionNotAllowed as exc:
        logger.warning("execution %s: %s", execution_id, exc)
        return ""
    if not finished:
        logger.warning("execution %s ended after it was taken away", execution_id)
        return ""
    return to
