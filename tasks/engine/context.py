"""What a task function gets as `context` (Django's `takes_context`, extended).

    @task(takes_context=True)
    def import_invoices(context, month: str):
        with context.step("fetch") as step:
            if not step.done:          # already done before an answer: skip the work
                fetch(month)
        context.progress(1, 2, "fetched")
        context.log("fetched the invoices")
        if context.ask("Import them?") == "yes":
            ...

`ask()` does not block a worker thread while a person thinks: it unwinds the function, the
execution waits for input with the worker slot freed, and once answered a worker calls the
function again from the top. Steps that already succeeded in this execution report
`step.done` and emit no events again; each `ask()` met before returns its stored answer.
Every call into the context is also a cancellation checkpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from django.db import transaction
from django.tasks.base import TaskContext

from tasks.bounds import log_line_clean, prompt_check, text_clean
from tasks.engine.logbuffer import LogBuffer
from tasks.human_input import InputSpec, input_spec_build
from tasks.models import Execution, Step
from tasks.services import LOG_LEVELS, execution_log_many, execution_progress, step_start
from tasks.states import Status, StepStatus, TaskInputError


class ExecutionInterrupted(BaseException):  # control flow, not an error
    """Unwinds a task function. A BaseException, so `except Exception` in user code does not
    swallow it."""


class InputRequired(ExecutionInterrupted):
    def __init__(self, prompt: str, spec: InputSpec | None = None) -> None:
        super().__init__(prompt)
        self.prompt = prompt
        self.spec: InputSpec = spec or {}


class CancelRequested(ExecutionInterrupted):
    """Someone cancelled the execution; it stops at this checkpoint."""


class LeaseLost(ExecutionInterrupted):
    """The execution is no longer this worker's (reaped, or cancelled by force)."""


class WorkerStopping(ExecutionInterrupted):
    """The worker is shutting down and releases the execution."""


class StepMismatch(RuntimeError):
    """A function re-run after an answer took different steps or asks than before."""


@dataclass
class RunState:
    """Mutable, per-run state behind the frozen context."""

    execution: Execution  # the row as claimed; services re-read it under their hold
    worker_id: str
    answers: list[dict[str, str]]
    stopping: threading.Event
    step_count: int = 0
    ask_count: int = 0
    log_buffer: LogBuffer = field(init=False)

    def __post_init__(self) -> None:
        self.log_buffer = LogBuffer(self.execution, self.worker_id)


# django-stubs declares TaskContext generic and not frozen; at run time it is neither.
@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionContext(TaskContext):  # type: ignore[type-arg, misc]
    """Django's TaskContext (`task_result`, `attempt`) plus steps, progress, log lines,
    `ask()` and a cancellation check."""

    state: RunState = field(repr=False)

    @property
    def execution_id(self) -> int:
        return self.state.execution.pk

    @property
    def attempt(self) -> int:
        """Which numbered execution of its task this is (1 for the first, 2 for a retry...)."""
        return self.state.execution.number

    @property
    def resumed(self) -> bool:
        """True when this run re-runs the function after a person's answer."""
        return bool(self.state.answers)

    # -- checkpoints -------------------------------------------------------------------
    def check_cancelled(self) -> None:
        """Raise if the execution was cancelled or is no longer this worker's.

        Commits the log lines written so far first: whatever event comes next (a step, a
        progress report, the execution's end) gets a higher id than they do."""
        state = self.state
        state.log_buffer.flush()
        execution_id = state.execution.pk
        row = (
            Execution.objects.filter(pk=execution_id)
            .values("status", "worker_id", "cancel_requested_at")
            .first()
        )
        if row is None or row["status"] != Status.RUNNING or row["worker_id"] != state.worker_id:
            raise LeaseLost(f"execution {execution_id} is no longer held by this worker")
        if row["cancel_requested_at"] is not None:
            raise CancelRequested("cancelled")
        if state.stopping.is_set():
            raise WorkerStopping("worker stopping")

    @property
    def cancelled(self) -> bool:
        try:
            self.check_cancelled()
        except ExecutionInterrupted:
            return True
        return False

    def sleep(self, seconds: float) -> None:
        """Wait, checking for cancellation at least twice a second."""
        deadline = time.monotonic() + max(0.0, seconds)
        self.check_cancelled()
        while (left := deadline - time.monotonic()) > 0:
            if self.state.stopping.wait(min(left, 0.5)):
                raise WorkerStopping("worker stopping")
            self.check_cancelled()

    # -- progress and log lines ----------------------------------------------------------
    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        self.check_cancelled()
        execution_progress(execution=self.state.execution, done=done, total=total, message=message)

    def log(self, message: str, level: str = "info") -> None:
        """Append a log line. It is committed within a few milliseconds, together with the
        lines written meanwhile (group commit), and before anything else the function
        does makes an event. A checkpoint too: a cancel request or the loss of the
        execution, seen by the last batch written, raises here."""
        state = self.state
        buffer = state.log_buffer
        if buffer.attention or state.stopping.is_set():
            self.check_cancelled()
            if buffer.error is not None:
                raise RuntimeError("writing log lines failed") from buffer.error
            buffer.attention = False
        if level not in LOG_LEVELS:
            raise TaskInputError(
                f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}", field="level"
            )
        message = log_line_clean(message)
        if transaction.get_connection().in_atomic_block:
            # The function holds a transaction: the line commits (or not) with it, as the
            # lines before it do; a flusher's own transaction could wait on its lock.
            buffer.flush()
            execution_log_many(execution=state.execution, lines=[(level, message)])
            return
        buffer.append(level, message)

    def log_flush(self) -> None:
        """Commit the log lines written so far (the worker calls it when the function ends)."""
        self.state.log_buffer.close()

    # -- steps -------------------------------------------------------------------------
    def step(self, name: str) -> StepScope:
        return StepScope(self, text_clean(name).strip()[:200] or "step")

    # -- human input -------------------------------------------------------------------
    def ask(
        self,
        prompt: str,
        choices: Sequence[str] | None = None,
        multiline: bool = False,
        default: str | None = None,
    ) -> str:
        """The person's answer to `prompt`; the first time, the execution waits for it.

        `choices` shows one button per choice and only those are accepted; `multiline` asks
        for a longer text; `default` is prefilled (with choices: it must be one of them)."""
        prompt = prompt_check(str(prompt))  # past TASK_PROMPT_MAX_LENGTH: fails the run
        if not prompt:
            raise ValueError("ask() needs a prompt")
        spec = input_spec_build(choices=choices, multiline=multiline, default=default)
        self.check_cancelled()
        state = self.state
        index = state.ask_count
        state.ask_count += 1
        if index < len(state.answers):
            given = state.answers[index]
            if given["prompt"] != prompt:
                raise StepMismatch(
                    f"ask #{index + 1} was {given['prompt']!r} before the answer and is "
                    f"{prompt!r} now: a re-run must ask the same questions"
                )
            return given["answer"]
        raise InputRequired(prompt, spec)


class StepScope:
    """`with context.step(name) as step:` - a named, timed step with step.* events."""

    def __init__(self, context: ExecutionContext, name: str) -> None:
        self.context = context
        self.name = name
        self.step: Step | None = None
        self.done = False

    def __enter__(self) -> StepScope:
        context = self.context
        state = context.state
        context.check_cancelled()
        index = state.step_count
        state.step_count += 1
        existing = Step.objects.filter(execution=state.execution, index=index).first()
        if existing is not None and existing.name != self.name:
            raise StepMismatch(
                f"step {index} was {existing.name!r} before the answer and is {self.name!r} "
                "now: a re-run must take the same steps"
            )
        if existing is not None and existing.status == StepStatus.SUCCEEDED:
            self.step, self.done = existing, True
            return self
        if existing is not None and existing.status == StepStatus.RUNNING:
            # It asked for input inside this step; it goes on where it stopped.
            self.step = existing
        elif existing is not None:
            # Failed before and the function caught it: run the body again, quietly.
            return self
        else:
            self.step = step_start(execution=state.execution, index=index, name=self.name)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        step = self.step
        if step is None or self.done:
            return
        self.context.state.log_buffer.flush()  # the step's lines before its end
        if exc is None:
            step.transition(StepStatus.SUCCEEDED)
        elif not isinstance(exc, ExecutionInterrupted):
            step.transition(StepStatus.FAILED, error=error_text(exc))
        # Interrupted: an ask leaves the step running while the execution waits; on a
        # cancel or a stop the worker fails the running steps with its reason.


def error_text(exc: BaseException) -> str:
    text = text_clean(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
