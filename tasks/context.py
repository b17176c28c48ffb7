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
from dataclasses import dataclass, field

from django.db import transaction
from django.tasks.base import TaskContext

from tasks.models import Execution, Step
from tasks.states import Status, StepStatus


class ExecutionInterrupted(BaseException):  # noqa: N818 - control flow, not an error
    """Unwinds a task function. A BaseException, so `except Exception` in user code does not
    swallow it."""


class InputRequired(ExecutionInterrupted):
    def __init__(self, prompt: str) -> None:
        super().__init__(prompt)
        self.prompt = prompt


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

    execution_id: int
    worker_id: str
    number: int
    answers: list[dict[str, str]]
    stopping: threading.Event
    step_count: int = 0
    ask_count: int = 0
    current_step: Step | None = None
    last_check: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionContext(TaskContext):
    """Django's TaskContext (`task_result`, `attempt`) plus steps, progress, log lines,
    `ask()` and a cancellation check."""

    state: RunState = field(repr=False)

    @property
    def execution_id(self) -> int:
        return self.state.execution_id

    @property
    def attempt(self) -> int:
        """Which numbered execution of its task this is (1 for the first, 2 for a retry...)."""
        return self.state.number

    @property
    def resumed(self) -> bool:
        """True when this run re-runs the function after a person's answer."""
        return bool(self.state.answers)

    def _execution(self) -> Execution:
        return Execution(pk=self.state.execution_id)

    # -- checkpoints -------------------------------------------------------------------
    def check_cancelled(self) -> None:
        """Raise if the execution was cancelled or is no longer this worker's."""
        state = self.state
        row = (
            Execution.objects.filter(pk=state.execution_id)
            .values("status", "worker_id", "cancel_requested_at")
            .first()
        )
        state.last_check = time.monotonic()
        if row is None or row["status"] != Status.RUNNING or row["worker_id"] != state.worker_id:
            raise LeaseLost(f"execution {state.execution_id} is no longer held by this worker")
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
        from tasks.services import execution_progress

        self.check_cancelled()
        execution_progress(execution=self._execution(), done=done, total=total, message=message)

    def log(self, message: str, level: str = "info") -> None:
        from tasks.services import execution_log

        self.check_cancelled()
        execution_log(execution=self._execution(), level=level, message=message)

    # -- steps -------------------------------------------------------------------------
    def step(self, name: str) -> StepScope:
        return StepScope(self, str(name).strip() or "step")

    # -- human input -------------------------------------------------------------------
    def ask(self, prompt: str) -> str:
        """The person's answer to `prompt`; the first time, the execution waits for it."""
        prompt = str(prompt).strip()
        if not prompt:
            raise ValueError("ask() needs a prompt")
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
        raise InputRequired(prompt)


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
        existing = Step.objects.filter(execution_id=state.execution_id, index=index).first()
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
            with transaction.atomic():
                step = Step.objects.create(
                    execution_id=state.execution_id, index=index, name=self.name
                )
                step.transition(StepStatus.RUNNING)
            self.step = step
        state.current_step = self.step
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        state = self.context.state
        step = self.step
        if step is None or self.done:
            return False
        state.current_step = None
        if exc is None:
            step.transition(StepStatus.SUCCEEDED)
        elif isinstance(exc, InputRequired):
            state.current_step = step  # stays running while the execution waits
        elif not isinstance(exc, ExecutionInterrupted):
            step.transition(StepStatus.FAILED, error=error_text(exc))
        # Other interruptions: the worker fails the running steps with its reason.
        return False


def error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
