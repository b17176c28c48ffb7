"""The state machines of executions and steps (contract: status names and transitions).

Our own, in a dozen lines, rather than django-fsm-2: the whole machine is one dict that
the admin, the commands, the dashboard and the tests can read, and a transition is one
locked read-check-write in a transaction that also writes the event.
"""

from django.db import models


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    WAITING_FOR_INPUT = "waiting_for_input", "Waiting for input"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ALLOWED: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.RUNNING, Status.CANCELLED}),
    Status.RUNNING: frozenset(
        {Status.WAITING_FOR_INPUT, Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}
    ),
    Status.WAITING_FOR_INPUT: frozenset({Status.RUNNING, Status.CANCELLED, Status.FAILED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}
FINISHED: frozenset[str] = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})
ACTIVE: frozenset[str] = frozenset({Status.PENDING, Status.RUNNING, Status.WAITING_FOR_INPUT})
# A task whose latest execution ended so may be retried (a new numbered execution).
RETRYABLE: frozenset[str] = frozenset({Status.FAILED, Status.CANCELLED})


class StepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


STEP_ALLOWED: dict[str, frozenset[str]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.SKIPPED}),
    StepStatus.RUNNING: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED}),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
}


class TransitionNotAllowed(Exception):
    """A status change the state machine does not allow. Nothing was changed."""


class TaskInputError(ValueError):
    """Bad input to a task service: a one-line message, and the input it is about (`field`:
    "title", "function", "kwargs", "answer"...; None for the request as a whole), which a
    form shows it next to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
