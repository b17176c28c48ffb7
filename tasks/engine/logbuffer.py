"""Group commit of a running function's log lines.

`context.log()` appends to the execution's buffer and returns; one flusher thread per
execution commits what accumulated within `linger` seconds (or a full batch at once)
through `execution_log_many`: one transaction, one row lock and one INSERT per batch
instead of per line. Each line is still its own execution.log event, in order, committed
before it is published. When the buffer is full, `append` waits for the batch in flight
only. `flush()` returns once every line appended before it is committed (or refused), so
an event the function makes next gets a higher id.

The flusher reads the held row with every batch, so `context.log` stays a cancellation
checkpoint without a query of its own: `attention` says the last batch saw a cancel
request or a refusal (the execution is no longer this worker's, or no longer active).
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connections

from tasks.models import Execution
from tasks.services import execution_log_many
from tasks.states import TaskInputError, TransitionNotAllowed

logger = logging.getLogger(__name__)

BATCH_MAX = 500  # lines per transaction; also the most a function runs ahead
LINGER_SECONDS = 0.005  # how long a batch waits for more lines before it commits


class LogBuffer:
    def __init__(
        self,
        execution: Execution,
        worker_id: str | None,
        *,
        batch_max: int = BATCH_MAX,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.execution = execution
        self.worker_id = worker_id
        self.batch_max = batch_max
        self.linger = linger
        self._cond = threading.Condition()
        self._pending: list[tuple[str, str]] = []
        self._appended = 0  # lines appended so far
        self._done = 0  # lines committed or refused so far
        self._in_flight = False
        self._hurry = False  # a flush waits: commit now, no lingering
        self._closed = False
        self._thread: threading.Thread | None = None
        self.attention = False  # the last batch saw a cancel request or was refused
        self.error: BaseException | None = None  # a batch failed for another reason
        self.batches = 0  # transactions written
        self.refused = 0  # lines refused (the execution was no longer active, or ours)
        self.blocked_max = 0.0  # the longest an append waited for room (seconds)

    def append(self, level: str, message: str) -> None:
        """Add one line (already checked and cleaned); waits only while the buffer is full,
        that is for the batch in flight."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the log buffer is closed")
            if len(self._pending) >= self.batch_max:
                waited_from = time.perf_counter()
                self._hurry = True
                self._cond.notify_all()
                self._cond.wait_for(lambda: len(self._pending) < self.batch_max)
                self.blocked_max = max(self.blocked_max, time.perf_counter() - waited_from)
            self._pending.append((level, message))
            self._appended += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"log-{self.execution.pk}", daemon=True
                )
                self._thread.start()
            elif len(self._pending) == 1 or len(self._pending) >= self.batch_max:
                self._cond.notify_all()

    def flush(self) -> None:
        """Return once every line appended so far is committed (or refused)."""
        with self._cond:
            target = self._appended
            if self._done >= target:
                return
            self._hurry = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._done >= target or not self._flusher_alive())

    def close(self) -> None:
        """Flush and stop the flusher: the function ended (returned, raised or unwound)."""
        self.flush()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _flusher_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the flusher thread ----------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: bool(self._pending) or self._closed)
                    if not self._pending:
                        return  # closed, all written
                    # Group commit: let lines gather for a moment unless someone waits.
                    self._cond.wait_for(
                        lambda: self._hurry or self._closed or len(self._pending) >= self.batch_max,
                        timeout=self.linger,
                    )
                    batch, self._pending = self._pending, []
                    self._hurry = False
                    self._in_flight = True
                    self._cond.notify_all()  # room again for a waiting append
                self._write(batch)
                with self._cond:
                    self._in_flight = False
                    self._done += len(batch)
                    self._cond.notify_all()
        finally:
            connections.close_all()  # this thread's own connection

    def _write(self, batch: list[tuple[str, str]]) -> None:
        self.batches += 1
        try:
            held = execution_log_many(
                execution=self.execution, lines=batch, worker_id=self.worker_id
            )
        except (TransitionNotAllowed, TaskInputError) as exc:
            # No longer active or no longer ours: refused, as a line written directly is.
            self.refused += len(batch)
            self.attention = True
            logger.warning("execution %s: %d log line(s) refused: %s", self.execution.pk,
                           len(batch), exc)  # fmt: skip
        except Exception as exc:
            self.refused += len(batch)
            self.error = self.error or exc
            self.attention = True
            logger.exception("execution %s: writing %d log line(s) failed", self.execution.pk,
                             len(batch))  # fmt: skip
            connections.close_all()
        else:
            if held.cancel_requested_at is not None:
                self.attention = True
