from __future__ import annotations

from datetime import timedelta

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
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
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


class Execution(models.Model):
    """One numbered attempt at a task; its status moves only through `transition`."""

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
    answer = models.TextField(blank=True)
    # Every answer given so far, in order ({"prompt", "answer"}): a function re-run after an
    # answer gets each earlier ask()'s answer back instead of waiting again.
    answers = models.JSONField(default=list, blank=True)
    result = models.JSONField(null=True, blank=True)
    worker_id = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "number"], name="execution_task_number")
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="execution_status_created"),
            models.Index(fields=["status", "lease_expires_at"], name="execution_status_lease"),
        ]

    def __str__(self) -> str:
        return f"execution #{self.id} (task #{self.task_id}, attempt {self.number})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

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

    def can_transition(self, to: str) -> bool:
        return to in ALLOWED[self.status]

    def transition(
        self,
        to: str,
        *,
        error: str = "",
        prompt: str = "",
        answer: str | None = None,
        worker_id: str | None = None,
        lease_expires_at=None,
        result=None,
    ) -> None:
        """Move to status `to` and write its events, all in one transaction.

        Reads the row under a lock first, so two callers racing on one execution see
        each other's result; a transition the machine does not allow raises
        TransitionNotAllowed and changes nothing.
        """
        with transaction.atomic():
            current = Execution.objects.select_for_update().get(pk=self.pk)
            from_status = current.status
            if to not in ALLOWED[from_status]:
                raise TransitionNotAllowed(
                    f"execution {self.pk} is {from_status}; it cannot become {to}"
                )
            now = timezone.now()
            fields = ["status"]
            current.status = to
            if to == Status.RUNNING and current.started_at is None:
                current.started_at = now
                fields.append("started_at")
            if to in FINISHED:
                current.finished_at = now
                fields.append("finished_at")
            if to != Status.RUNNING:
                # Only a running execution holds a worker's lease.
                current.lease_expires_at = None
                fields.append("lease_expires_at")
            if result is not None:
                current.result = result
                fields.append("result")
            if error:
                current.error = error
                fields.append("error")
            if to == Status.WAITING_FOR_INPUT:
                current.prompt = prompt
                current.answer = ""
                fields += ["prompt", "answer"]
            if answer is not None:
                current.answer = answer
                fields.append("answer")
            if worker_id is not None:
                current.worker_id = worker_id
                fields.append("worker_id")
            if lease_expires_at is not None:
                current.lease_expires_at = lease_expires_at
                fields.append("lease_expires_at")
            current.save(update_fields=fields)
            signals.execution_status_changed.send(
                sender=Execution, execution=current, from_status=from_status, to_status=to
            )
            task = Task.objects.select_for_update().get(pk=current.task_id)
            if task.latest_execution_id == current.pk and task.status != to:
                task_from = task.status
                task.status = to
                task.save(update_fields=["status", "updated_at"])
                signals.task_status_changed.send(
                    sender=Task,
                    task=task,
                    from_status=task_from,
                    to_status=to,
                    execution=current,
                )
        # Keep the caller's object in step with the row.
        for name in (
            "status",
            "started_at",
            "finished_at",
            "error",
            "prompt",
            "answer",
            "worker_id",
            "lease_expires_at",
            "cancel_requested_at",
            "result",
        ):
            setattr(self, name, getattr(current, name))


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
        """Move the step to `to`, writing its step.* event in the same transaction."""
        with transaction.atomic():
            current = Step.objects.select_for_update().get(pk=self.pk)
            from_status = current.status
            if to not in STEP_ALLOWED[from_status]:
                raise TransitionNotAllowed(
                    f"step {self.pk} is {from_status}; it cannot become {to}"
                )
            now = timezone.now()
            current.status = to
            fields = ["status"]
            if to == StepStatus.RUNNING:
                current.started_at = now
                fields.append("started_at")
            else:
                current.finished_at = now
                fields.append("finished_at")
                if current.started_at is None:
                    current.started_at = now
                    fields.append("started_at")
            if error:
                current.error = error
                fields.append("error")
            current.save(update_fields=fields)
            signals.step_status_changed.send(
                sender=Step, step=current, from_status=from_status, to_status=to
            )
        for name in ("status", "started_at", "finished_at", "error"):
            setattr(self, name, getattr(current, name))
