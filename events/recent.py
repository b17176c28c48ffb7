"""The hub's recent events, kept in memory so that a reconnecting stream catches up
without reading the log.

After a deploy or a network blip every stream of a process reconnects at once with a
Last-Event-ID a few events back. Each then ran the replay checks (three or four queries)
and read its missed events from the log: with 2,000 streams, about 16 ms of CPU each.
The hub already saw those events, in id order: it keeps the last
EVENTS_MEMORY_CATCH_UP of them here, and a resume id inside that window is answered
from memory, with the same filter and grant checks as the live path. An id older than
the window (or one the hub cannot vouch for) goes to the log, as before.

The window is exact: it holds every event with floor < id <= the hub's cursor. Whatever
breaks that (the cursor jumping over events it never dispatched, a commit arriving after
the hub gave up on its id) empties it, and the next reconnects read the log.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING

from events.audience import Grant
from events.types import EventJSON

if TYPE_CHECKING:
    from events.filters import EventFilter

Item = tuple[EventJSON, float]


def _id(item: Item) -> int:
    return item[0]["id"]


class RecentEvents:
    def __init__(self, size: int, cursor: int) -> None:
        self.size = size
        self.items: deque[Item] = deque()
        # Every event with floor < id <= the hub's cursor is in `items`.
        self.floor = cursor

    def add(self, item: Item) -> None:
        """The hub dispatched `item`, the next event after every one before it."""
        if self.size <= 0:
            self.floor = item[0]["id"]
            return
        self.items.append(item)
        while len(self.items) > self.size:
            self.floor = _id(self.items.popleft())

    def forget(self, cursor: int) -> None:
        """Continuity is lost: nothing before `cursor` is vouched for any more."""
        self.items.clear()
        self.floor = cursor

    def covers(self, after_id: int, cursor: int) -> bool:
        """Whether every event after `after_id` up to `cursor` is here."""
        return self.size > 0 and self.floor <= after_id <= cursor

    def _after(self, after_id: int) -> int:
        return bisect.bisect_right(self.items, after_id, key=_id)

    def page(
        self, after_id: int, up_to_id: int, event_filter: EventFilter, grant: Grant, limit: int
    ) -> list[EventJSON]:
        """Like `events_after`: the events after `after_id` (<= up_to_id) matching the
        filter that the grant allows, in id order, at most `limit`."""
        found: list[EventJSON] = []
        for event, _ in itertools.islice(self.items, self._after(after_id), None):
            if event["id"] > up_to_id:
                break
            if event_filter.matches(event) and grant.allows(event.get("audience", "")):
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    def first_after(self, after_id: int) -> EventJSON | None:
        """The first event (any type, any audience) after `after_id`, if it is here."""
        index = self._after(after_id)
        return self.items[index][0] if index < len(self.items) else None

    def replay_problem(
        self,
        resume: int,
        cursor: int,
        event_filter: EventFilter,
        grant: Grant,
        *,
        cutoff: datetime,
        limit: int,
    ) -> str | None:
        """`_replay_problem` of events.streams for a covered resume id, from memory."""
        first = self.first_after(resume)
        if first is not None and datetime.fromisoformat(first["at"]) < cutoff:
            return "older than the retention window"
        if (
            cursor - resume > limit
            and len(self.page(resume, cursor, event_filter, grant, limit + 1)) > limit
        ):
            return "replay window exceeded"
        return None
