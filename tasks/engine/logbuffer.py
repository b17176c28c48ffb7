"""Group commit of a running function's log lines.

`context.log()` appends to the execution's buffer and returns; one flusher thread per
execution commits what accumulated within `linger` seconds (or a full batch at once)
through `execution_log_many`: one transaction, one row lock and one INSERT per batch
instead of per line. Each line is still its own execution.log event, in order, committed
before it is published. When the buffer is full, `append` waits for the batch in flight
only. `flush()` returns once every line appended before it is committed (or refused), so
an event the function makes next gets a higher id.

While the function holds a transaction of its own, its lines are written in it (they
commit or roll back with its work, as before), and so are the lines still waiting: the
flusher could not commit them meanwhile (on SQLite the function holds the write lock).
Lines written early that way and then rolled back are written again, in their place.

The flusher reads the held row with every batch, so `context.log` stays a cancellation
checkpoint without a query of its own: `attention` says the last batch saw a cancel
request or a refusal (the execution is no longer this worker's, or no longer active).
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import connections, transaction

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
        self._in_flight: list[tuple[str, str]] = []  # the batch the flusher is writing
        self._claimed = False  # ... inside its transaction: it will commit it
        self._taken_over = False  # ... written instead by the function's own transaction
        # Lines written in a transaction of the function's, until it commits: if it rolls
        # back instead, they are written again (nothing the function logged is lost).
        self._tentative: list[_Tentative] = []
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
        if self._tentative:
            self._requeue()
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
                self._start_flusher()
            elif len(self._pending) == 1 or len(self._pending) >= self.batch_max:
                self._cond.notify_all()

    def flush(self) -> None:
        """Return once every line appended so far is committed (or refused).

        Inside a transaction of the calling thread (the function opened one), the lines
        not yet committed are written in that transaction instead, ahead of what the
        function does next: the flusher could not commit them while it is open (on
        SQLite it holds the database's write lock), so waiting for it would deadlock."""
        if transaction.get_connection().in_atomic_block:
            self._flush_here()
            return
        if self._tentative:
            self._requeue()
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

    def _flush_here(self) -> None:
        with self._cond:
            # A batch the flusher claimed holds no lock this transaction needs (see
            # _write): it finishes. One it has not claimed is taken over, and skipped.
            self._cond.wait_for(lambda: not (self._in_flight and self._claimed))
            lines = self._lost()  # before anything logged after them
            self._appended += len(lines)
            if self._in_flight and not self._taken_over:
                lines, self._taken_over = lines + self._in_flight, True
            lines += self._pending
            self._pending = []
            self._cond.notify_all()
        if not lines:
            return
        try:
            if self._write_lines(lines):
                tentative = _Tentative(lines)
                self._tentative.append(tentative)
                transaction.on_commit(tentative.commit)  # dropped if it rolls back
        finally:
            with self._cond:
                self._done += len(lines)
                self._cond.notify_all()

    def _lost(self) -> list[tuple[str, str]]:
        """The lines of the function's transactions that rolled back (their commit hook
        was dropped without running), to be written again; forgets the settled ones."""
        waiting = {id(hook) for _, hook, _ in transaction.get_connection().run_on_commit}
        lost: list[tuple[str, str]] = []
        unsettled: list[_Tentative] = []
        for tentative in self._tentative:
            if id(tentative.commit) in waiting:
                unsettled.append(tentative)
            elif not tentative.committed:
                lost += tentative.lines
        self._tentative = unsettled
        return lost

    def _requeue(self) -> None:
        """What the function's rolled back transactions held goes first."""
        lost = self._lost()
        if not lost:
            return
        with self._cond:
            self._pending[:0] = lost
            self._appended += len(lost)
            self._start_flusher()
            self._cond.notify_all()

    def _start_flusher(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"log-{self.execution.pk}", daemon=True
            )
            self._thread.start()

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
                    self._in_flight, self._claimed, self._taken_over = batch, False, False
                    self._cond.notify_all()  # room again for a waiting append
                self._write(batch)
                with self._cond:
                    if not self._taken_over:  # else the taker counted them
                        self._done += len(batch)
                    self._in_flight, self._claimed = [], False
                    self._cond.notify_all()
        finally:
            connections.close_all()  # this thread's own connection

    def _write(self, batch: list[tuple[str, str]]) -> None:
        """The flusher's transaction: claim the batch once it is open (on SQLite, once it
        holds the write lock, so no open transaction of the function can be waiting for
        it), unless the function's own transaction took the batch over meanwhile."""
        try:
            with transaction.atomic():
                with self._cond:
                    if self._taken_over:
                        return
                    self._claimed = True
                self._write_lines(batch)
        except Exception as exc:
            self.refused += len(batch)
            self.error = self.error or exc
            self.attention = True
            logger.exception("execution %s: writing %d log line(s) failed", self.execution.pk,
                             len(batch))  # fmt: skip
            connections.close_all()

    def _write_lines(self, batch: list[tuple[str, str]]) -> bool:
        """Write a batch in the current transaction; False when it was refused."""
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
            return False
        if held.cancel_requested_at is not None:
            self.attention = True
        return True


class _Tentative:
    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self.lines = lines
        self.committed = False

        def commit() -> None:
            self.committed = True

        self.commit = commit  # one object: found by identity among the commit hooks
