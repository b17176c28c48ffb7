"""Bounds and text checks for what people and task functions store (settings TASK_*).

People's input (title, description, kwargs, answer) is refused with one line when it is
too large, not JSON, nested too deeply, or carries text no database or page can hold (NUL,
a lone surrogate: PostgreSQL refuses both, and a lone surrogate cannot be encoded as
UTF-8, so a page showing it could never be served). What a running function writes
(prompt, log lines, errors, results) is cleaned instead, so a careless function cannot
crash its worker or a page.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from django.conf import settings

from tasks.states import TaskInputError

KWARGS_MAX_DEPTH = 32  # nesting of kwargs: deeper JSON is refused (Python's parser recurses)
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")

P = ParamSpec("P")
R = TypeVar("R")


def _about(field: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refusals of the decorated check are about `field` (forms show them beside it)."""

    def decorate(check: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(check)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return check(*args, **kwargs)
            except TaskInputError as exc:
                if exc.field is None:
                    exc.field = str(kwargs.get("what", field))
                raise

        return checked

    return decorate


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters"
    return "must not contain lone surrogates (invalid Unicode)"


def text_clean(value: Any) -> str:
    """`value` as text any database and page can hold (NUL and lone surrogates become
    U+FFFD): for what functions write, never for people's input."""
    return _BAD_TEXT.sub("\ufffd", str(value))


def _refuse(what: str, value: str) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise TaskInputError(f"{what} {problem}")


@_about("title")
def title_clean(raw: Any) -> str:
    title = str(raw or "").strip()
    most = settings.TASK_TITLE_MAX_LENGTH
    if not title:
        raise TaskInputError("title must not be empty")
    if len(title) > most:
        raise TaskInputError(f"title is {len(title)} characters long; the most is {most}")
    _refuse("title", title)
    if _CONTROL.search(title):
        raise TaskInputError("title must be one line without control characters")
    return title


@_about("description")
def description_clean(raw: Any) -> str:
    description = str(raw or "")
    most = settings.TASK_DESCRIPTION_MAX_LENGTH
    if len(description) > most:
        raise TaskInputError(
            f"description is {len(description)} characters long; the most is {most}"
        )
    _refuse("description", description)
    return description


@_about("answer")
def answer_check(answer: Any) -> str:
    if not isinstance(answer, str) or not answer.strip():
        raise TaskInputError("the answer must not be empty")
    most = settings.TASK_ANSWER_MAX_LENGTH
    if len(answer) > most:
        raise TaskInputError(f"the answer is {len(answer)} characters long; the most is {most}")
    _refuse("the answer", answer)
    return answer


def _no_constants(name: str) -> Any:
    raise TaskInputError(f"kwargs must not contain {name}: JSON has no such number")


@_about("kwargs")
def kwargs_parse(raw: str | None) -> dict[str, Any]:
    """Parse a JSON object of keyword arguments, or raise TaskInputError (one line)."""
    if raw is None or raw.strip() == "":
        return {}
    size = len(raw.encode("utf-8", "surrogatepass"))
    most = settings.TASK_KWARGS_MAX_BYTES
    if size > most:
        raise TaskInputError(f"kwargs is {size} bytes long; the most is {most}")
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise TaskInputError(f"kwargs is not valid JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise TaskInputError(
            f"kwargs is nested too deeply; the most is {KWARGS_MAX_DEPTH}"
        ) from None
    if not isinstance(value, dict):
        raise TaskInputError(f"kwargs must be a JSON object, got {type(value).__name__}")
    kwargs_check(value)
    return value


@_about("kwargs")
def kwargs_check(value: Any, *, what: str = "kwargs") -> None:
    """Refuse arguments that are not storable JSON within the bounds: too deep, too large,
    NaN/Infinity, NUL or lone surrogates in a string, non-string keys."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > KWARGS_MAX_DEPTH:
            raise TaskInputError(f"{what} is nested too deeply; the most is {KWARGS_MAX_DEPTH}")
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise TaskInputError(f"{what} keys must be strings, got {type(key).__name__}")
                _refuse(f"{what} keys", key)
                stack.append((inner, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((inner, depth + 1) for inner in item)
        elif isinstance(item, str):
            _refuse(f"{what} strings", item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise TaskInputError(
                f"{what} must not contain NaN or Infinity: JSON has no such number"
            )
        elif item is not None and not isinstance(item, bool | int | float):
            raise TaskInputError(f"{what} must be JSON: {type(item).__name__} is not a JSON value")
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise TaskInputError(f"{what} must be JSON: {exc}") from None
    most = settings.TASK_KWARGS_MAX_BYTES
    if size > most:
        raise TaskInputError(f"{what} is {size} bytes long as JSON; the most is {most}")


def prompt_check(prompt: str) -> str:
    """A function's prompt: cleaned, and refused past TASK_PROMPT_MAX_LENGTH (the
    execution then fails with that line)."""
    prompt = text_clean(prompt).strip()
    most = settings.TASK_PROMPT_MAX_LENGTH
    if len(prompt) > most:
        raise ValueError(f"the prompt is {len(prompt)} characters long; the most is {most}")
    return prompt


def log_line_clean(raw: Any) -> str:
    """A function's log line: cleaned and cut to TASK_LOG_LINE_MAX_LENGTH, saying so."""
    message = text_clean(raw)
    most = settings.TASK_LOG_LINE_MAX_LENGTH
    if len(message) <= most:
        return message
    marker = f"… [{len(message) - most} more characters cut]"
    return message[: max(0, most - len(marker))] + marker


def json_clean(value: Any, *, depth: int = 0) -> Any:
    """A function's result as storable JSON: strings cleaned; NaN/Infinity and anything
    nested past 100 levels raise ValueError (the execution fails with that line)."""
    if depth > 100:
        raise ValueError("the result is nested too deeply to store")
    if isinstance(value, str):
        return text_clean(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"the result contains {value}, which JSON cannot store")
    if isinstance(value, dict):
        return {text_clean(k): json_clean(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_clean(v, depth=depth + 1) for v in value]
    return value
