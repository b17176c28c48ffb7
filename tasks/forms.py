"""Forms of the dashboard: they parse and report input; the services decide.

Every check here calls the same function the services and the command use, so a form
error and a command error say the same thing, and each is shown next to its field.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from django import forms
from django.http import QueryDict

from tasks.registry import (
    task_function_permitted,
    task_function_resolve,
    task_functions_registered,
    task_kwargs_check,
)
from tasks.selectors import TaskFilters
from tasks.services import task_kwargs_parse, task_title_clean
from tasks.states import Status, TaskInputError

QUERY_MAX_LENGTH = 200
PAGE_MAX = 100_000


class TaskFilterForm(forms.Form):
    """The list's filters, from the URL. A bad value is ignored with a message, never a
    500: a link someone mistyped still shows the list."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    q = forms.CharField(required=False, max_length=QUERY_MAX_LENGTH, strip=True)
    function = forms.CharField(required=False, max_length=200, strip=True)
    created_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1, max_value=PAGE_MAX)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "must not be before the start date")
        return data


def task_filters_parse(params: QueryDict | dict) -> tuple[TaskFilters, list[str]]:
    """The valid filters in `params`, and one message per ignored parameter."""
    form = TaskFilterForm(params)
    form.is_valid()
    problems = []
    for name, errors in form.errors.items():
        value = params.get(name, "")
        shown = value if len(value) <= 40 else value[:40] + "…"
        problems.append(f"Ignored {name}={shown!r}: {' '.join(errors)}")
    data = {k: v for k, v in form.cleaned_data.items() if k not in form.errors}
    if "created_to" in form.errors:
        data.pop("created_from", None)
    filters = TaskFilters(
        status=data.get("status") or "",
        q=data.get("q") or "",
        function=data.get("function") or "",
        created_from=data.get("created_from"),
        created_to=data.get("created_to"),
        page=data.get("page") or 1,
    )
    return filters, problems


def function_label(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def function_help(path: str) -> str:
    """`name: arg=default, ...` of a task function, as a short hint for the form."""
    try:
        function = task_function_resolve(path)
    except TaskInputError:
        return ""
    params = list(inspect.signature(function.func).parameters.values())
    if function.takes_context and params:
        params = params[1:]
    shown = [
        p.name if p.default is inspect.Parameter.empty else f"{p.name}={json.dumps(p.default)}"
        for p in params
    ]
    return f"{function_label(path)}: {', '.join(shown) or 'no arguments'}"


class TaskCreateForm(forms.Form):
    function = forms.ChoiceField(label="Function")
    title = forms.CharField(label="Title", required=False, strip=False)
    kwargs = forms.CharField(
        label="Arguments (JSON object)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: Any, user=None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.functions = task_functions_registered(user)
        self.fields["function"].choices = [
            (p, f"{function_label(p)} ({p})") for p in self.functions
        ]
        self.fields["title"].widget.attrs.update(maxlength="200", autocomplete="off")
        self.fields["kwargs"].widget.attrs["placeholder"] = '{"steps": 3, "delay": 1}'
        self.help = {p: function_help(p) for p in self.functions}

    def clean_title(self) -> str:
        try:
            return task_title_clean(self.cleaned_data.get("title", ""))
        except TaskInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_kwargs(self) -> dict[str, Any]:
        try:
            return task_kwargs_parse(self.cleaned_data.get("kwargs"))
        except TaskInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        path = data.get("function")
        if path and "kwargs" in data:
            try:
                function = task_function_resolve(path)
                task_function_permitted(function.module_path, self.user)
            except TaskInputError as exc:
                self.add_error("function", str(exc))
                return data
            try:
                task_kwargs_check(function, [], data["kwargs"])
            except TaskInputError as exc:
                self.add_error("kwargs", str(exc))
        return data

    def _post_clean(self) -> None:
        super()._post_clean()
        describe_errors(self)

    def add_service_error(self, exc: TaskInputError) -> None:
        """Put an error the service raised next to the field it is about."""
        message = str(exc)
        lowered = message.lower()
        if lowered.startswith("title"):
            self.add_error("title", message)
        elif lowered.startswith(("kwargs", "arguments")):
            self.add_error("kwargs", message)
        elif "function" in lowered or lowered.startswith("only staff"):
            self.add_error("function", message)
        else:
            self.add_error(None, message)
        describe_errors(self)


def describe_errors(form: forms.Form) -> None:
    """Point each field with an error at its message, for screen readers."""
    for name in form.errors:
        if name in form.fields:
            attrs = form.fields[name].widget.attrs
            attrs["aria-describedby"] = f"{form[name].auto_id}-error"
            attrs["aria-invalid"] = "true"


class AnswerForm(forms.Form):
    answer = forms.CharField(
        label="Your answer",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def add_service_error(self, exc: TaskInputError) -> None:
        self.add_error("answer", str(exc))
        describe_errors(self)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
