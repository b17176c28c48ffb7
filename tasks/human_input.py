"""What a question accepts: `context.ask(prompt, choices=[...], multiline=False, default=None)`.

The spec is stored on the execution (`Execution.input_spec`) while it waits, so the page can
show one button per choice, a textarea for a multiline answer, or a line prefilled with the
default, and so the server checks every answer (dashboard, inbox, admin, `manage.py answer`,
API) against the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from tasks.states import TaskInputError

CHOICE_MAX_LENGTH = 200
CHOICES_MAX = 20


class InputSpec(TypedDict):
    choices: NotRequired[list[str]]
    multiline: NotRequired[bool]
    default: NotRequired[str]


def input_spec_build(
    *, choices: Sequence[str] | None = None, multiline: bool = False, default: str | None = None
) -> InputSpec:
    """The spec of an ask(); a malformed one raises ValueError (a bug in the task function,
    which then fails with this one line)."""
    spec: InputSpec = {}
    if choices is not None:
        if isinstance(choices, str) or not isinstance(choices, Sequence):
            raise ValueError("choices must be a list of strings")
        cleaned = [str(c).strip() if isinstance(c, str) else c for c in choices]
        if not cleaned:
            raise ValueError("choices must not be empty")
        if len(cleaned) > CHOICES_MAX:
            raise ValueError(f"at most {CHOICES_MAX} choices, got {len(cleaned)}")
        for choice in cleaned:
            if not isinstance(choice, str) or not choice:
                raise ValueError(f"each choice must be a non-empty string, got {choice!r}")
            if len(choice) > CHOICE_MAX_LENGTH or "\n" in choice:
                raise ValueError(f"a choice must be one line of at most {CHOICE_MAX_LENGTH} chars")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("choices must be different from each other")
        if multiline:
            raise ValueError("a question takes choices or a multiline answer, not both")
        spec["choices"] = list(cleaned)
    if not isinstance(multiline, bool):
        raise ValueError("multiline must be True or False")
    if multiline:
        spec["multiline"] = True
    if default is not None:
        if not isinstance(default, str) or not default.strip():
            raise ValueError("default must be a non-empty string")
        if "choices" in spec and default not in spec["choices"]:
            raise ValueError(f"default {default!r} is not one of the choices")
        if not multiline and "\n" in default:
            raise ValueError("the default of a one-line question must be one line")
        spec["default"] = default
    return spec


def input_spec_read(raw: Any) -> InputSpec:
    """The stored spec, tolerating rows written before specs existed ({} or junk)."""
    if not isinstance(raw, dict):
        return {}
    spec: InputSpec = {}
    choices = raw.get("choices")
    if isinstance(choices, list) and all(isinstance(c, str) for c in choices) and choices:
        spec["choices"] = list(choices)
    if raw.get("multiline") is True:
        spec["multiline"] = True
    default = raw.get("default")
    if isinstance(default, str) and default:
        spec["default"] = default
    return spec


def answer_check(spec: InputSpec, answer: str) -> str:
    """The answer as stored, or TaskInputError (one line) when the question does not take it:
    a question with choices takes exactly one of them. Emptiness and length are checked by
    the service for every question; a one-line question is one line by its input field, and
    a line break sent anyway is kept (programs may answer any text)."""
    choices = spec.get("choices")
    if choices and answer not in choices:
        shown = answer if len(answer) <= 40 else answer[:40] + "…"
        raise TaskInputError(
            f"the answer must be one of {', '.join(choices)}; got {shown!r}", field="answer"
        )
    return answer
