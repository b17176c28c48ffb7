"""Who sees and does what (contract: Access). Every page, fragment, stream, log, action,
admin page and API endpoint asks here, and nowhere else.

Seeing a task: its creator, members of its group, holders of tasks.view_all_tasks (or of
tasks.manage_all_tasks: acting on every task implies seeing it, as Django's change
permission implies view), superusers. Acting on it (cancel, retry, answer, rerun, bulk):
its creator, its group's members, holders of tasks.manage_all_tasks, superusers.
Privileged functions (TASK_FUNCTIONS_STAFF_ONLY) only for staff. For anyone else an
invisible task does not exist (404); a visible one they may not act on is 403.

The object rules are django-rules predicates registered as permissions, so that
`user.has_perm("tasks.cancel_task", task)` reads the same in views, admin and API:

    tasks.view_task     (with a task)  see it
    tasks.change_task   (with a task)  act on it (admin edits too)
    tasks.delete_task   (with a task)  act on it
    tasks.cancel_task / tasks.answer_task   act on it
    tasks.retry_task    act on it, and run its function (staff for privileged ones)

Without an object these names keep their Django meaning (model permissions, for the
admin). Lists use the selector `tasks_visible` (one query), never a check per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import rules
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from events.audience import EVERYTHING, Grant, audience_text
from tasks.models import Execution, Task

VIEW_ALL = "tasks.view_all_tasks"
MANAGE_ALL = "tasks.manage_all_tasks"
# The audience token of events only staff and view_all holders receive (worker.*).
STAFF_TOKEN = "staff"
# worker.* events also move every person's no-worker banner: a page's stream (HTML, the
# banner re-rendered from what that person may see) is granted them, /events/ is not.
BANNER_TOKEN = "banner"
ID_MAX = 2**63 - 1


def _active(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _manages_all(user: Any) -> bool:
    return _active(user) and bool(user.is_superuser or user.has_perm(MANAGE_ALL))


def _sees_all(user: Any) -> bool:
    return _active(user) and bool(
        user.is_superuser or user.has_perm(VIEW_ALL) or user.has_perm(MANAGE_ALL)
    )


def _group_ids(user: Any) -> frozenset[int]:
    """The user's groups, read once per user object (per request)."""
    cached: frozenset[int] | None = getattr(user, "_task_group_ids", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("id", flat=True))
        user._task_group_ids = cached
    return cached


# --- predicates (django-rules) ----------------------------------------------------------


def _is_task_creator(user: Any, task: Task | None) -> bool:
    return (
        task is not None
        and _active(user)
        and task.created_by_id is not None
        and task.created_by_id == user.pk
    )


def _is_task_group_member(user: Any, task: Task | None) -> bool:
    return (
        task is not None
        and _active(user)
        and task.group_id is not None
        and task.group_id in _group_ids(user)
    )


def _sees_all_tasks(user: Any, task: Task | None) -> bool:
    return task is not None and _sees_all(user)


def _manages_all_tasks(user: Any, task: Task | None) -> bool:
    return task is not None and _manages_all(user)


def _may_run_its_function(user: Any, task: Task | None) -> bool:
    return task is not None and function_allowed(user, task.function)


# django-rules is untyped: its Predicate wraps our typed functions, and `|`/`&` combine them.
_rules: Any = cast(Any, rules)
Predicate: Callable[[Callable[[Any, Task | None], bool]], Any] = _rules.Predicate
is_task_creator = Predicate(_is_task_creator)
is_task_group_member = Predicate(_is_task_group_member)
sees_all_tasks = Predicate(_sees_all_tasks)
manages_all_tasks = Predicate(_manages_all_tasks)
may_run_its_function = Predicate(_may_run_its_function)

can_view_task = is_task_creator | is_task_group_member | sees_all_tasks
can_act_on_task = is_task_creator | is_task_group_member | manages_all_tasks
can_retry_task = can_act_on_task & may_run_its_function

for _name, _predicate in {
    "tasks.view_task": can_view_task,
    "tasks.change_task": can_act_on_task,
    "tasks.delete_task": can_act_on_task,
    "tasks.cancel_task": can_act_on_task,
    "tasks.answer_task": can_act_on_task,
    "tasks.retry_task": can_retry_task,
}.items():
    if not _rules.perm_exists(_name):
        _rules.add_perm(_name, _predicate)


# --- the one selector and the per-object helpers ----------------------------------------


def tasks_in_scope(grant: Grant) -> QuerySet[Task]:
    """The tasks a grant (events.audience) reaches: the same rows as `tasks_visible` of
    a user with that grant. Renders shared by every viewer of one scope use it."""
    if grant.everything:
        return Task.objects.all()
    users = [int(t[2:]) for t in grant.tokens if t.startswith("u:") and t[2:].isdigit()]
    groups = [int(t[2:]) for t in grant.tokens if t.startswith("g:") and t[2:].isdigit()]
    if not users and not groups:
        return Task.objects.none()
    return Task.objects.filter(Q(created_by__in=users) | Q(group__in=groups))


def tasks_visible(user: Any) -> QuerySet[Task]:
    """Every task `user` may see: the one selector lists, counts, search and the API use."""
    if not _active(user):
        return Task.objects.none()
    return tasks_in_scope(event_grant(user))


def task_visible(user: Any, task: Task) -> bool:
    return bool(can_view_task(user, task))


def task_actionable(user: Any, task: Task) -> bool:
    return bool(can_act_on_task(user, task))


def _pk(raw: Any) -> int | None:
    """A usable primary key, or None (an id past 64 bits would overflow the lookup)."""
    try:
        pk = int(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return pk if 0 < pk <= ID_MAX else None


def task_for_user(user: Any, pk: Any, *, act: bool = False) -> Task:
    """The task `pk` if `user` may see it (and act on it, with `act`): Http404 when it is
    invisible or absent, PermissionDenied when visible but not actionable."""
    key = _pk(pk)
    task = (
        Task.objects.select_related("latest_execution", "created_by", "group")
        .filter(pk=key)
        .first()
        if key is not None
        else None
    )
    if task is None or not task_visible(user, task):
        raise Http404("No such task.")
    if act and not task_actionable(user, task):
        raise PermissionDenied("You may see this task but not act on it.")
    return task


def execution_for_user(user: Any, pk: Any, *, act: bool = False) -> Execution:
    """The execution `pk`, by the same rules as its task."""
    key = _pk(pk)
    execution = (
        Execution.objects.select_related("task").filter(pk=key).first() if key is not None else None
    )
    if execution is None or not task_visible(user, execution.task):
        raise Http404("No such execution.")
    if act and not task_actionable(user, execution.task):
        raise PermissionDenied("You may see this task but not act on it.")
    return execution


def attempt_for_user(user: Any, task_pk: Any, number: Any, *, act: bool = False) -> Execution:
    """Attempt `number` of task `task_pk` (the latest with number=None), by its task's rules."""
    task = task_for_user(user, task_pk, act=act)
    if number is None:
        execution = task.executions.order_by("-number").first()
    else:
        attempt = _pk(number)
        execution = task.executions.filter(number=attempt).first() if attempt else None
    if execution is None:
        raise Http404("No such attempt.")
    execution.task = task
    return execution


def function_allowed(user: Any, path: str) -> bool:
    """Privileged functions (TASK_FUNCTIONS_STAFF_ONLY) only for staff; `user=None` is the
    server's own command line, which may run anything."""
    if user is None:
        return True
    return bool(_active(user) and user.is_staff) or path not in settings.TASK_FUNCTIONS_STAFF_ONLY


def groups_offered(user: Any) -> QuerySet[Group]:
    """The groups `user` may share a new task with: their own."""
    if not _active(user):
        return Group.objects.none()
    groups: QuerySet[Group] = user.groups.order_by("name")
    return groups


def task_audience(task: Task) -> str:
    """The audience of the task's events: its creator and its group."""
    tokens = []
    if task.created_by_id is not None:
        tokens.append(f"u:{task.created_by_id}")
    if task.group_id is not None:
        tokens.append(f"g:{task.group_id}")
    return audience_text(tokens)


def task_audience_by_id(task_id: int) -> str:
    """The audience of a task's events when only its id is at hand (one indexed read)."""
    row = Task.objects.filter(pk=task_id).values_list("created_by_id", "group_id").first()
    if row is None:
        return ""
    return audience_text([f"u:{row[0]}" if row[0] else "", f"g:{row[1]}" if row[1] else ""])


def workers_audience() -> str:
    """The audience of worker.* events: staff and view_all holders (contract: Workers),
    and every page's header (see BANNER_TOKEN)."""
    return audience_text([STAFF_TOKEN, BANNER_TOKEN])


def page_grant(grant: Grant) -> Grant:
    """What a page's stream may carry: a person's `event_grant`, and the events that move
    the banner (a page renders from them only the header, never the worker's data)."""
    if grant.everything or not grant.tokens:  # everything, or an inactive person: nothing
        return grant
    return Grant(tokens=grant.tokens | {BANNER_TOKEN})


def event_grant(user: Any) -> Grant:
    """What `user`'s streams may carry: everything for view_all (or manage_all) holders
    and superusers, else the events of their own tasks and of their groups' tasks, and
    worker.* events for staff."""
    if not _active(user):
        return Grant()
    if _sees_all(user):
        return EVERYTHING
    tokens = {f"u:{user.pk}"} | {f"g:{gid}" for gid in _group_ids(user)}
    if user.is_staff:
        tokens.add(STAFF_TOKEN)
    return Grant(tokens=frozenset(tokens))


def event_topic_visible(user: Any, task_id: int | None, execution_id: int | None) -> bool:
    """`/events/?task=N&execution=M`: both must exist and be visible (else 404)."""
    try:
        if task_id is not None:
            task_for_user(user, task_id)
        if execution_id is not None:
            execution = execution_for_user(user, execution_id)
            if task_id is not None and execution.task_id != task_id:
                return True  # both visible; the stream is simply empty
    except Http404:
        return False
    return True


def tasks_actionable(user: Any) -> QuerySet[Task]:
    """Every task `user` may act on (and see): the inbox and bulk actions use it."""
    if not user.is_authenticated or not user.is_active:
        return Task.objects.none()
    if _manages_all(user):
        return tasks_visible(user)
    return Task.objects.filter(Q(created_by=user) | Q(group__in=_group_ids(user)))


def workers_visible(user: Any) -> bool:
    """Workers (`/workers/`, worker.* events): staff and view_all_tasks holders."""
    return bool(user.is_authenticated and user.is_active and (user.is_staff or _sees_all(user)))
