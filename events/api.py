"""The public API of the event log: what other apps may call.

Writes: `event_emit`. Reads: `events_after`, `last_event_id`.
"""

from typing import Any

from django.db import transaction

from events import publish as publishing
from events.models import Event


def event_emit(
    *,
    type: str,
    data: dict[str, Any],
    task_id: int | None = None,
    execution_id: int | None = None,
    using: str = "default",
) -> Event:
    """Append an event to the log and publish it once the surrounding transaction commits.

    Called inside the transaction that made the change, so the change and its event
    commit together or not at all (the log is an outbox). Outside any transaction the
    row commits at once and is published straight after.
    """
    event = Event.objects.using(using).create(
        type=type, task_id=task_id, execution_id=execution_id, data=data
    )
    payload = event.as_dict()
    transaction.on_commit(lambda: publishing.publish(payload), using=using, robust=True)
    return event


def events_after(
    after_id: int,
    *,
    types: list[str] | None = None,
    type_prefixes: list[str] | None = None,
    task_id: int | None = None,
    execution_id: int | None = None,
    limit: int = 1000,
    up_to_id: int | None = None,
) -> list[dict]:
    """Events with id > after_id matching the filters, in id order, as contract dicts."""
    from django.db.models import Q

    qs = Event.objects.filter(id__gt=after_id)
    if up_to_id is not None:
        qs = qs.filter(id__lte=up_to_id)
    if types or type_prefixes:
        match = Q()
        for name in types or []:
            match |= Q(type=name)
        for prefix in type_prefixes or []:
            match |= Q(type__startswith=prefix)
        qs = qs.filter(match)
    if task_id is not None:
        qs = qs.filter(task_id=task_id)
    if execution_id is not None:
        qs = qs.filter(execution_id=execution_id)
    return [e.as_dict() for e in qs.order_by("id")[:limit]]


def last_event_id() -> int:
    """The highest id in the log (0 when empty)."""
    last = Event.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0
