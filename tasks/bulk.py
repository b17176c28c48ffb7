"""Bulk cancel and retry: the same services as the buttons, over many tasks, in pages.

One call acts on at most `limit` tasks (by id, after a cursor) and stops early once its time
budget is spent, so that 10,000 matching tasks never hold one request for long: the caller
goes on from `last_id` until `done`. Every task is checked on its own, with the same rules as
its page (tasks.access, the state machine, staff-only functions); each change writes its own
events (one per changed execution, as its buttons do), and each refusal is counted under a
short reason.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db.models import QuerySet

from tasks import access
from tasks.models import Task
from tasks.services import execution_cancel, task_retry
from tasks.states import FINISHED, Status, TaskInputError, TransitionNotAllowed

BulkAction = Literal["cancel", "retry"]
ACTIONS: tuple[BulkAction, ...] = ("cancel", "retry")
BULK_PAGE = 200
BULK_SECONDS = 3.0  # a page stops after this, whatever its size

NOT_ALLOWED = "not yours to act on"


@dataclass
class BulkPage:
    """What one page did: counts, refusals by reason, and where the next page starts."""

    changed: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    seen: int = 0
    last_id: int = 0
    done: bool = False


def _cancel_refusal(task: Task) -> str | None:
    execution = task.latest_execution
    if execution is None:
        return "without an attempt"
    if execution.status in FINISHED:
        return f"already {execution.status}"
    if execution.status == Status.RUNNING and execution.cancel_requested_at is not None:
        return "already being cancelled"
    return None


def _retry_refusal(user: Any, task: Task) -> str | None:
    execution = task.latest_execution
    if not access.function_allowed(user, task.function):
        return f"staff-only ({task.function})"
    if execution is None or execution.status not in (Status.FAILED, Status.CANCELLED):
        status = execution.status if execution else "no attempt"
        return f"not failed or cancelled ({status.replace('_', ' ')})"
    return None


def tasks_bulk_act(
    *,
    user: Any,
    action: BulkAction,
    tasks: QuerySet[Task],
    after_id: int = 0,
    limit: int = BULK_PAGE,
    seconds: float = BULK_SECONDS,
) -> BulkPage:
    """Cancel or retry the tasks of `tasks` (already limited to what `user` may see) with
    ids above `after_id`, in id order, up to `limit` of them or `seconds` of work."""
    if action not in ACTIONS:
        raise TaskInputError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    deadline = time.monotonic() + seconds
    page = BulkPage(last_id=after_id)
    batch = list(
        tasks.filter(pk__gt=after_id)
        .select_related("latest_execution", "created_by")
        .order_by("pk")[:limit]
    )
    for task in batch:
        page.seen += 1
        page.last_id = task.pk
        reason = (
            NOT_ALLOWED
            if not access.task_actionable(user, task)
            else _cancel_refusal(task)
            if action == "cancel"
            else _retry_refusal(user, task)
        )
        if reason is None:
            try:
                if action == "cancel":
                    assert task.latest_execution is not None
                    execution_cancel(execution=task.latest_execution, by=user)
                else:
                    task_retry(task=task, by=user)
            except (TransitionNotAllowed, TaskInputError):
                reason = "changed meanwhile"
            else:
                page.changed += 1
        if reason is not None:
            page.refused[reason] += 1
        if time.monotonic() >= deadline:
            break
    page.done = len(batch) < limit and page.seen == len(batch)
    return page
