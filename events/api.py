"""The public API of the event log: what other apps may call, and the one place the log
is queried (hub and streams included).

Writes: `event_emit`, `event_emit_many`. Reads: `events_after`, `events_last`,
`events_count`, `event_heads_after`, `last_event_id`; `audience_q` (a grant as SQL).
Filters are keyword arguments: `types` (exact names), `type_prefixes`, `task_id`, `execution_id`
(`EventFilter.query()` gives them), `grant`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Q, QuerySet

from events import publish as publishing
from events.audience import Grant
from events.models import Event
from events.types import EventJSON

AUDIENCE_MAX_LENGTH = 200


def event_emit(
    *,
    type: str,
    data: dict[str, Any],
    task_id: int | None = None,
    execution_id: int | None = None,
    audience: str = "",
    using: str = "default",
) -> Event:
    """Append an event to the log and publish it once the surrounding transaction commits.

    Called inside the transaction that made the change, so the change and its event
    commit together or not at all (the log is an outbox). Outside any transaction the
    row commits at once and is published straight after.

    `audience` (events.audience.audience_text: " u:5 g:3 ") says who may receive it; an
    empty audience reaches only subscribers granted everything.
    """
    _audience_check(audience)
    event = Event.objects.using(using).create(
        type=type, task_id=task_id, execution_id=execution_id, data=data, audience=audience
    )
    # The hub needs the audience; the frames sent to clients leave it out (events.sse).
    payload: EventJSON = {**event.as_dict(), "audience": audience}
    transaction.on_commit(lambda: publishing.publish(payload), using=using, robust=True)
    return event


class NewEvent(NamedTuple):
    """One event for `event_emit_many`: what `event_emit` takes as keywords."""

    type: str
    data: dict[str, Any]
    task_id: int | None = None
    execution_id: int | None = None
    audience: str = ""


def event_emit_many(events: Sequence[NewEvent], *, using: str = "default") -> list[Event]:
    """Append many events to the log in one INSERT, in the order given (increasing ids),
    and publish each, in id order, once the surrounding transaction commits.

    `event_emit` for a burst: the same outbox rule and audiences, one statement and one
    commit hook instead of one per event (the ids come back from the INSERT on SQLite and
    PostgreSQL)."""
    for new in events:
        _audience_check(new.audience)
    if not events:
        return []
    rows = Event.objects.using(using).bulk_create(
        [
            Event(
                type=new.type,
                task_id=new.task_id,
                execution_id=new.execution_id,
                data=new.data,
                audience=new.audience,
            )
            for new in events
        ]
    )
    payloads: list[EventJSON] = sorted(
        ({**row.as_dict(), "audience": row.audience} for row in rows), key=lambda p: p["id"]
    )

    def publish_all() -> None:
        for payload in payloads:
            publishing.publish(payload)  # never raises

    transaction.on_commit(publish_all, using=using, robust=True)
    return rows


def _audience_check(audience: str) -> None:
    if audience and (len(audience) > AUDIENCE_MAX_LENGTH or audience != f" {audience.strip()} "):
        raise ValueError(f"audience must come from audience_text(), got {audience[:80]!r}")


def audience_q(grant: Grant | None) -> Q:
    """The SQL form of `grant.allows(event.audience)`: a filter for Event querysets."""
    if grant is None or grant.everything:
        return Q()
    if not grant.tokens:
        return Q(pk__in=[])
    match = Q()
    for token in sorted(grant.tokens):
        match |= Q(audience__contains=f" {token} ")
    return match


def _matching(
    qs: QuerySet[Event],
    *,
    types: Iterable[str] = (),
    type_prefixes: Iterable[str] = (),
    task_id: int | None = None,
    execution_id: int | None = None,
    grant: Grant | None = None,
) -> QuerySet[Event]:
    types, type_prefixes = list(types), list(type_prefixes)
    if types or type_prefixes:
        match = Q(type__in=types) if types else Q()
        for prefix in type_prefixes:
            match |= Q(type__startswith=prefix)
        qs = qs.filter(match)
    if task_id is not None:
        qs = qs.filter(task_id=task_id)
    if execution_id is not None:
        qs = qs.filter(execution_id=execution_id)
    return qs.filter(audience_q(grant)) if grant is not None else qs


def _window(after_id: int, up_to_id: int | None) -> QuerySet[Event]:
    qs = Event.objects.filter(id__gt=after_id)
    return qs if up_to_id is None else qs.filter(id__lte=up_to_id)


def events_after(
    after_id: int,
    *,
    types: Iterable[str] = (),
    type_prefixes: Iterable[str] = (),
    task_id: int | None = None,
    execution_id: int | None = None,
    limit: int = 1000,
    up_to_id: int | None = None,
    grant: Grant | None = None,
    with_audience: bool = False,
) -> list[EventJSON]:
    """Events with after_id < id (<= up_to_id) matching the filters (and, with `grant`,
    only those it allows), in id order ("audience" included with `with_audience`)."""
    qs = _matching(
        _window(after_id, up_to_id),
        types=types,
        type_prefixes=type_prefixes,
        task_id=task_id,
        execution_id=execution_id,
        grant=grant,
    )
    rows = qs.order_by("id")[:limit]
    if with_audience:
        return [{**e.as_dict(), "audience": e.audience} for e in rows]
    return [e.as_dict() for e in rows]


def events_last(
    *,
    limit: int,
    before_id: int | None = None,
    types: Iterable[str] = (),
    type_prefixes: Iterable[str] = (),
    task_id: int | None = None,
    execution_id: int | None = None,
    grant: Grant | None = None,
) -> list[EventJSON]:
    """The last `limit` events (before `before_id`, if given) matching the filters, oldest
    first: a page that starts from the end."""
    qs = _matching(
        Event.objects.all() if before_id is None else Event.objects.filter(id__lt=before_id),
        types=types,
        type_prefixes=type_prefixes,
        task_id=task_id,
        execution_id=execution_id,
        grant=grant,
    )
    return [e.as_dict() for e in reversed(qs.order_by("-id")[:limit])]


def events_count(
    after_id: int,
    *,
    up_to_id: int,
    cap: int,
    types: Iterable[str] = (),
    type_prefixes: Iterable[str] = (),
    task_id: int | None = None,
    execution_id: int | None = None,
    grant: Grant | None = None,
) -> int:
    """How many events after_id < id <= up_to_id match the filters, counting at most cap
    (so a huge log stays cheap: the answer is cap for "cap or more")."""
    qs = _matching(
        _window(after_id, up_to_id),
        types=types,
        type_prefixes=type_prefixes,
        task_id=task_id,
        execution_id=execution_id,
        grant=grant,
    )
    return qs.order_by("id")[:cap].count()


class EventHead(NamedTuple):
    """An event without its data: enough to know what it touches."""

    id: int
    type: str
    task_id: int | None
    execution_id: int | None


def event_heads_after(
    after_id: int,
    *,
    limit: int,
    types: Iterable[str] = (),
    type_prefixes: Iterable[str] = (),
    task_id: int | None = None,
    execution_id: int | None = None,
    grant: Grant | None = None,
) -> list[EventHead]:
    """Like events_after, without the data (no JSON to decode): a cheap look ahead."""
    qs = _matching(
        Event.objects.filter(id__gt=after_id),
        types=types,
        type_prefixes=type_prefixes,
        task_id=task_id,
        execution_id=execution_id,
        grant=grant,
    )
    rows = qs.order_by("id").values_list("id", "type", "task_id", "execution_id")[:limit]
    return [EventHead(*row) for row in rows]


def last_event_id() -> int:
    """The highest id in the log (0 when empty)."""
    last = Event.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0
