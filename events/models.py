from django.db import models
from django.utils import timezone

from events.types import EventJSON


class Event(models.Model):
    """One durable event: the outbox and the replay log of every stream.

    Append-only. `task_id` and `execution_id` are topic ids, not foreign keys: the log
    outlives what it describes, and this app knows nothing of what the topics are.
    """

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)
    task_id = models.BigIntegerField(null=True, blank=True)
    execution_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # Who may receive it: space-delimited tokens (" u:5 g:3 "), matched against a
    # subscriber's grant (events.audience). Empty: only subscribers granted everything.
    audience = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["task_id", "id"], name="event_task_id"),
            models.Index(fields=["execution_id", "id"], name="event_execution_id"),
            models.Index(fields=["type", "id"], name="event_type_id"),
            models.Index(fields=["at"], name="event_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.type}"

    def as_dict(self) -> EventJSON:
        """The contract's JSON object for this event."""
        return {
            "id": self.id,
            "type": self.type,
            "at": self.at.isoformat(),
            "task_id": self.task_id,
            "execution_id": self.execution_id,
            "data": self.data,
        }
