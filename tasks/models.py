from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from tasks import signals
from tasks.states import (
    ALLOWED,
    FINISHED,
    STEP_ALLOWED,
    Status,
    StepStatus,
    TransitionNotAllowed,
)

TITLE_MAX_LENGTH = 200


class Task(models.Model):
    """Something a person asked to be done; each attempt at it is an Execution."""

    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    description = models.TextField(blank=True)
    function = models.CharField(max_length=200, help_text="dotted path of a @task function")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    # The status of its latest execution, kept here so the list can filter and count by it.
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    latest_execution = models.ForeignKey(
        "Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    max_attempts = models.PositiveSmallIntegerField(
        default=1, help_text="attempts made automatically when a worker is lost"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Shared with this group's members (see tasks.access); chosen at creation among the
    # creator's own groups.
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # "Run again with changes": the task this one was made from.
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("view_all_tasks", "Can see every task"),
            ("manage_all_tasks", "Can cancel, retry and answer every task"),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="task_newest"),
            models.Index(fields=["status", "-created_at"], name="task_status_newest"),
            models.Index(fields=["function", "-created_at"], name="task_function_newest"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.title}"

    @property
    def attempts(self) -> int:
        return self.latest_execution.number if self.latest_execution else 0

    def show(self, execution: Execution, *, new: bool = False) -> None:
        """The one writer of `status` and `latest_execution`: a task shows its latest
        execution's status. A `new` execution (creation, retry) becomes the latest; any
        other moves the task only while it is the latest.

        A conditional UPDATE, not a second lock: the caller holds the execution (or made
        the task), and only a holder of a task's latest execution changes the task.
        """
        from_status = self.status
        rows = Task.objects.filter(pk=self.pk)
        changes: dict[str, Any] = {"status": execution.status, "updated_at": timezone.now()}
        if new:
            changes["latest_execution"] = execution
        else:
            rows = rows.filter(latest_execution=execution)
        if not rows.update(**changes):
            return
        for name, value in changes.items():
            setattr(self, name, value)
        if from_status != execution.status:
            signals.task_status_changed.send(
                sender=Task,
                task=self,
                from_status=from_status,
                to_status=execution.status,
                execution=execution,
            )


class ExecutionQuerySet(models.QuerySet["Execution"]):
    def held(self, pk: int, *, skip_locked: bool = False) -> Execution | None:
        """The execution's row, locked for the rest of the transaction (None: no such row,
        or with `skip_locked` another transaction holds it).

        The one way this project locks. Every write to an execution, to its steps and to
        its task's status holds the execution's row, and a transaction holds one.
        """
        row = self.select_for_update(skip_locked=skip_locked).filter(pk=pk).first()
        if row is not None:
            row._held = True
            # Past its transaction an instance holds nothing (SQLite ignores FOR UPDATE;
            # its IMMEDIATE transactions serialise every writer instead).
            transaction.on_commit(row._release)
        return row


class Execution(models.Model):
    """One numbered attempt at a task; its status moves only through `transition`."""

    objects = ExecutionQuerySet.as_manager()
    _held = False  # this instance is the row its transaction holds (objects.held)

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="executions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    progress_message = models.CharField(max_length=500, blank=True)
    prompt = models.TextField(blank=True)
    # What the prompt accepts (tasks.human_input.InputSpec): choices, multiline, default.
    input_spec = models.JSONField(default=dict, blank=True)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    # Every answer given so far, in order ({"prompt", "answer"}): a function re-run after an
    # answer gets each earlier ask()'s answer back instead of waiting again.
    answers = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    worker_id = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # Log lines the function wrote; past TASK_LOG_LINES_MAX they are dropped, and counted.
    log_lines = models.PositiveIntegerField(default=0)
    # Who asked for this attempt (created or retried the task) and who cancelled it: the
    # history's "who". Empty: the command line or the system.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["task_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="execution_task_number")
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="execution_status_created"),
            models.Index(fields=["status", "lease_expires_at"], name="execution_status_lease"),
            models.Index(fields=["finished_at"], name="execution_finished"),
        ]

    def __str__(self) -> str:
        return f"execution #{self.id} (task #{self.task_id}, attempt {self.number})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def is_runnable(self) -> bool:
        """A worker may claim it: pending, or waiting for input that has been answered."""
        return self.status == Status.PENDING or (
            self.status == Status.WAITING_FOR_INPUT and self.answer != ""
        )

    def _release(self) -> None:
        self._held = False

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, round(100 * self.progress_done / self.progress_total))

    def transition(
        self,
        to: str,
        *,
        error: str = "",
        prompt: str = "",
        input_spec: dict[str, Any] | None = None,
        worker_id: str | None = None,
        lease_expires_at: datetime | None = None,
        result: Any = None,
    ) -> None:
        """Move to status `to` and write its events, in one transaction: the one writer of
        `status` (and, through Task.show, of the task's).

        Call it on the row your transaction holds (`Execution.objects.held`): a service
        reads, decides and transitions under that one lock. On any other instance it holds
        the row itself first. A transition the machine does not allow raises
        TransitionNotAllowed and changes nothing.
        """
        if not self._held:
            with transaction.atomic():
                row = Execution.objects.held(self.pk)
                if row is None:
                    raise Execution.DoesNotExist(f"execution {self.pk} does not exist")
                row.transition(
                    to,
                    error=error,
                    prompt=prompt,
                    input_spec=input_spec,
                    worker_id=worker_id,
                    lease_expires_at=lease_expires_at,
                    result=result,
                )
            for name in _EXECUTION_STATE:  # keep the caller's object in step with the row
                setattr(self, name, getattr(row, name))
            return
        from_status = self.status
        if to not in ALLOWED[from_status]:
            raise TransitionNotAllowed(
                f"execution {self.pk} is {from_status}; it cannot become {to}"
            )
        now = timezone.now()
        fields = ["status"]
        self.status = to
        if to == Status.RUNNING and self.started_at is None:
            self.started_at = now
            fields.append("started_at")
        if to in FINISHED:
            self.finished_at = now
            fields.append("finished_at")
        if to != Status.RUNNING:
            # Only a running execution holds a worker's lease.
            self.lease_expires_at = None
            fields.append("lease_expires_at")
        if result is not None:
            self.result = result
            fields.append("result")
        if error:
            self.error = error
            fields.append("error")
        if to == Status.WAITING_FOR_INPUT:
            self.prompt = prompt
            self.input_spec = input_spec or {}
            self.answer = ""
            self.answered_by = None
            self.answered_at = None
            fields += ["prompt", "input_spec", "answer", "answered_by", "answered_at"]
        if worker_id is not None:
            self.worker_id = worker_id
            fields.append("worker_id")
        if lease_expires_at is not None:
            self.lease_expires_at = lease_expires_at
            fields.append("lease_expires_at")
        self.save(update_fields=fields)
        signals.execution_status_changed.send(
            sender=Execution, execution=self, from_status=from_status, to_status=to
        )
        self.task.show(self)


# What a transition may change, copied back to an instance that did not hold the row.
_EXECUTION_STATE = (
    "status",
    "started_at",
    "finished_at",
    "error",
    "prompt",
    "input_spec",
    "answer",
    "answered_by",
    "answered_at",
    "worker_id",
    "lease_expires_at",
    "result",
)


class Step(models.Model):
    """A named stage of an execution, shown as a timeline."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["execution_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "index"], name="step_execution_index")
        ]

    def __str__(self) -> str:
        return f"step {self.index} {self.name}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return int((end - self.started_at).total_seconds() * 1000)

    def transition(self, to: str, *, error: str = "") -> None:
        """Move the step to `to`, writing its step.* event in the same transaction.

        A step belongs to its execution: the transaction holds the execution's row. Called
        on a step reached through a held execution (`execution.steps`), it takes no lock;
        on any other instance it holds the execution first.
        """
        if not (Step.execution.is_cached(self) and self.execution._held):
            with transaction.atomic():
                execution = Execution.objects.held(self.execution_id)
                if execution is None:
                    raise Execution.DoesNotExist(f"execution {self.execution_id} does not exist")
                row = execution.steps.get(pk=self.pk)
                row.transition(to, error=error)
            for name in ("status", "started_at", "finished_at", "error"):
                setattr(self, name, getattr(row, name))
            return
        from_status = self.status
        if to not in STEP_ALLOWED[from_status]:
            raise TransitionNotAllowed(f"step {self.pk} is {from_status}; it cannot become {to}")
        now = timezone.now()
        self.status = to
        fields = ["status"]
        if to == StepStatus.RUNNING:
            self.started_at = now
            fields.append("started_at")
        else:
            self.finished_at = now
            fields.append("finished_at")
            if self.started_at is None:
                self.started_at = now
                fields.append("started_at")
        if error:
            self.error = error
            fields.append("error")
        self.save(update_fields=fields)
        signals.step_status_changed.send(
            sender=Step, step=self, from_status=from_status, to_status=to
        )


class Worker(models.Model):
    """One worker process (`manage.py worker`, or the worker inside `serve`), kept alive by
    its heartbeats; one whose heartbeat runs out (`expires_at`) is lost."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"
        LOST = "lost", "Lost"

    worker_id = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, default="worker", help_text="worker or serve")
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    concurrency = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # Last heartbeat plus the worker's own lease: past it, the worker is lost.
    expires_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["state", "expires_at"], name="worker_state_expires")]

    def __str__(self) -> str:
        return f"worker {self.worker_id}"

    def is_alive(self, now: datetime) -> bool:
        return self.state == self.State.RUNNING and self.expires_at >= now

    def as_payload(self) -> dict[str, object]:
        """The worker.* event data (contract): worker_id, host, pid, concurrency."""
        return {
            "worker_id": self.worker_id,
            "host": self.host,
            "pid": self.pid,
            "concurrency": self.concurrency,
        }
