"""Forms of the dashboard: they parse and report input; the services decide.

Every check here calls the same function the services and the command use, so a form
error and a command error say the same thing, and each is shown next to its field.
"""

from __future__ import annotations

import inspect
import json
from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, Group, User
from django.http import QueryDict

from tasks import bounds
from tasks.access import groups_offered
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
# A day's start and the next day's must both be datetimes in any time zone.
DATE_MIN = date(1, 1, 2)
DATE_MAX = date(9999, 12, 30)


class TaskFilterForm(forms.Form):
    """The list's filters, from the URL. A bad value is ignored with a message, never a
    500: a link someone mistyped still shows the list."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Status.choices])
    q = forms.CharField(required=False, max_length=QUERY_MAX_LENGTH, strip=True)
    function = forms.CharField(required=False, max_length=200, strip=True)
    created_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    page = forms.IntegerField(required=False, min_value=1, max_value=PAGE_MAX)

    def _clean_day(self, name: str) -> date | None:
        day: date | None = self.cleaned_data.get(name)
        if day is not None and not DATE_MIN <= day <= DATE_MAX:
            raise forms.ValidationError(
                f"must be a date between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}"
            )
        return day

    def clean_created_from(self) -> date | None:
        return self._clean_day("created_from")

    def clean_created_to(self) -> date | None:
        return self._clean_day("created_to")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "must not be before the start date")
        return data


def task_filters_parse(params: QueryDict | dict[str, str]) -> tuple[TaskFilters, list[str]]:
    """The valid filters in `params`, and one message per ignored parameter."""
    form = TaskFilterForm(params)
    form.is_valid()
    problems = []
    for name, errors in form.errors.items():
        value = params.get(name, "")
        shown = value if len(value) <= 40 else value[:40] + "…"
        problems.append(f"Ignored {name}={shown!r}: {' '.join(map(str, errors))}")
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


class ServiceErrors(forms.Form):
    """A form whose input a service checks: its errors go next to the field they name."""

    def add_service_error(self, exc: TaskInputError) -> None:
        """Put an error a service raised next to the field it names (or above the form)."""
        self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        describe_errors(self)


class TaskCreateForm(ServiceErrors):
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
    group = forms.ModelChoiceField(
        label="Share with",
        queryset=Group.objects.none(),
        required=False,
        empty_label="Nobody (only me)",
        help_text="Members of this group see the task and may act on it.",
    )

    def __init__(self, *args: Any, user: User | AnonymousUser | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.functions = task_functions_registered(user)
        function = self.fields["function"]
        assert isinstance(function, forms.ChoiceField)
        function.choices = [(p, f"{function_label(p)} ({p})") for p in self.functions]
        # The creator's own groups. With none the field is hidden, and still refuses a
        # group someone posts anyway ("Select a valid choice").
        offered = groups_offered(user)
        group_field = self.fields["group"]
        assert isinstance(group_field, forms.ModelChoiceField)
        group_field.queryset = offered
        if not offered.exists():
            group_field.widget = forms.HiddenInput()
        most = settings.TASK_TITLE_MAX_LENGTH
        self.fields["title"].widget.attrs.update(maxlength=str(most), autocomplete="off")
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

    def clean_description(self) -> str:
        try:
            return bounds.description_clean(self.cleaned_data.get("description", ""))
        except TaskInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        path = data.get("function")
        if path and "kwargs" in data:
            try:
                function = task_function_resolve(path)
                task_function_permitted(function.module_path, self.user)
                task_kwargs_check(function, [], data["kwargs"])
            except TaskInputError as exc:
                self.add_service_error(exc)
        return data

    def full_clean(self) -> None:
        super().full_clean()
        describe_errors(self)


def describe_errors(form: forms.Form) -> None:
    """Point each field with an error at its message, for screen readers."""
    for name in form.errors:
        if name in form.fields:
            attrs = form.fields[name].widget.attrs
            attrs["aria-describedby"] = f"{form[name].auto_id}-error"
            attrs["aria-invalid"] = "true"


class AnswerForm(ServiceErrors):
    """The answer to an execution waiting for input (dashboard and admin): the service
    decides what is a good answer."""

    answer = forms.CharField(
        label="Your answer",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
