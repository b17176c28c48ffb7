"""Writes: keyword-only services named <entity>_<action>."""

import json
from typing import Any

from django.db import transaction

from tasks import signals
from tasks.models import TITLE_MAX_LENGTH, Execution, Task
from tasks.registry import (
    DEFAULT_FUNCTION,
    task_function_permitted,
    task_function_resolve,
    task_kwargs_check,
)
from tasks.states import TaskInputError


def task_kwargs_parse(raw: str | None) -> dict[str, Any]:
    """Parse a JSON object of keyword arguments, or raise TaskInputError."""
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TaskInputError(f"kwargs is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, dict):
        raise TaskInputError(f"kwargs must be a JSON object, got {type(value).__name__}")
    return value


def task_title_clean(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise TaskInputError("title must not be empty")
    if len(title) > TITLE_MAX_LENGTH:
        raise TaskInputError(
            f"title is {len(title)} characters long; the most is {TITLE_MAX_LENGTH}"
        )
    if any(ord(c) < 32 for c in title):
        raise TaskInputError("title must be one line without control characters")
    return title


def task_create(
    *,
    title: str,
    function: str = DEFAULT_FUNCTION,
    kwargs: dict[str, Any] | None = None,
    args: list[Any] | None = None,
    description: str = "",
    created_by=None,
    max_attempts: int = 1,
) -> Task:
    """Create a task and enqueue its first execution, with their events, in one transaction.

    Every check runs before anything is written: bad input raises TaskInputError and
    creates nothing.
    """
    title = task_title_clean(title)
    kwargs = {} if kwargs is None else kwargs
    args = [] if args is None else args
    if not isinstance(kwargs, dict):
        raise TaskInputError(f"kwargs must be a JSON object, got {type(kwargs).__name__}")
    task_function = task_function_resolve(function)
    task_function_permitted(task_function.module_path, created_by)
    task_kwargs_check(task_function, args, kwargs)
    try:
        json.dumps([args, kwargs])
    except (TypeError, ValueError) as exc:
        raise TaskInputError(f"arguments must be JSON-serialisable: {exc}") from None
    if max_attempts < 1:
        raise TaskInputError("max_attempts must be at least 1")

    with transaction.atomic():
        task = Task.objects.create(
            title=title,
            description=description,
            function=task_function.module_path,
            args=args,
            kwargs=kwargs,
            created_by=created_by,
            max_attempts=max_attempts,
        )
        signals.task_created.send(sender=Task, task=task)
        execution_enqueue(task=task)
    return task


def execution_enqueue(*, task: Task) -> Execution:
    """Add the next numbered, pending execution of `task` and make it the latest.

    Must run inside a transaction that holds the task (creation or retry).
    """
    last = task.executions.order_by("-number").values_list("number", flat=True).first()
    execution = Execution.objects.create(task=task, number=(last or 0) + 1)
    previous_status = task.status
    task.latest_execution = execution
    task.status = execution.status
    task.save(update_fields=["latest_execution", "status", "updated_at"])
    signals.execution_created.send(sender=Execution, execution=execution)
    if last is not None and previous_status != execution.status:
        signals.task_status_changed.send(
            sender=Task,
            task=task,
            from_status=previous_status,
            to_status=execution.status,
            execution=execution,
        )
    return execution
