"""Finding the task function a dotted path names, with one-line errors."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.tasks import Task
from django.utils.module_loading import import_string

from tasks.states import TaskInputError

DEFAULT_FUNCTION = "tasks.examples.pipeline"
# Run by a program outside the workers, which reports through
# POST /api/executions/{id}/report/ (contract: Programs). Workers never claim it.
EXTERNAL = "external"

if TYPE_CHECKING:
    # A @task function: django.tasks.Task is generic in django-stubs, not at run time.
    TaskFunction = Task[..., Any]


def _dotted(path: str) -> str:
    path = (path or "").strip()
    if "." not in path:
        raise TaskInputError(
            f"function must be a dotted path like {DEFAULT_FUNCTION}, got {path!r}",
            field="function",
        )
    return path


def task_function_resolve(path: str) -> TaskFunction:
    """The @task function at `path`, or TaskInputError saying why not."""
    path = _dotted(path)
    try:
        found = import_string(path)
    except ImportError:
        raise TaskInputError(
            f"unknown function {path!r}: no such module or attribute", field="function"
        ) from None
    except Exception as exc:  # a module that fails to import is a bad path, not a crash
        raise TaskInputError(
            f"function {path!r} could not be imported: {exc}", field="function"
        ) from None
    if not isinstance(found, Task):
        raise TaskInputError(
            f"{path!r} is not a task function (decorate it with @task)", field="function"
        )
    return found


def task_kwargs_check(function: TaskFunction, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse arguments the function cannot take, before anything is stored."""
    signature = inspect.signature(function.func)
    params = list(signature.parameters.values())
    if function.takes_context and params:
        params = params[1:]
    try:
        signature.replace(parameters=params).bind(*args, **kwargs)
    except TypeError as exc:
        raise TaskInputError(
            f"arguments do not fit {function.module_path}: {exc}", field="kwargs"
        ) from None


def task_functions_registered(user: User | AnonymousUser | None = None) -> list[str]:
    """Dotted paths a person may run from the dashboard (setting TASK_FUNCTIONS); those in
    TASK_FUNCTIONS_STAFF_ONLY only for staff. `user=None` means the command line."""
    staff_only = set(settings.TASK_FUNCTIONS_STAFF_ONLY)
    allowed = user is None or user.is_staff
    return [p for p in settings.TASK_FUNCTIONS if allowed or p not in staff_only]


def task_function_listed(path: str) -> None:
    """Refuse a function that is not in TASK_FUNCTIONS: no worker would run it. Checked
    before anything is imported, so a path someone typed never imports a module."""
    path = _dotted(path)
    if path not in settings.TASK_FUNCTIONS:
        raise TaskInputError(
            f"function {path} is not in TASK_FUNCTIONS; no worker runs it", field="function"
        )


def task_function_permitted(path: str, user: User | AnonymousUser | None = None) -> None:
    """Refuse a staff-only function for a person who is not staff."""
    if user is not None and not user.is_staff and path in settings.TASK_FUNCTIONS_STAFF_ONLY:
        raise TaskInputError(f"only staff may run {path}", field="function")
