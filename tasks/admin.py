"""The admin, by the same rules as the dashboard (tasks.access): each list shows only what
the user may see, each object answers has_view/change/delete_permission from the object
rules (django-rules: "tasks.view_task" with a task...), and each action needs both the
model permission (allowed_permissions) and, per object, the right to act on it. The
model permissions still gate the admin itself, as in any Django project.

A task's function, arguments, creator and group are read-only: a task is created through
the services (form, command, API), which check its function (TASK_FUNCTIONS, staff-only
ones) and arguments; an edit must not turn a pending task into another program."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from events.api import last_event_id
from tasks import access, bounds, selectors
from tasks.human_input import input_spec_read
from tasks.models import Execution, Step, Task
from tasks.services import execution_answer, execution_cancel, task_retry
from tasks.states import Status, TaskInputError, TransitionNotAllowed
from tasks.web import renderers
from tasks.web.forms import AnswerForm


def _apply(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    objects: Iterable[Any],
    action: Callable[[Any], object],
    done: str,
    *,
    permission: str,
    task_of: Callable[[Any], Task],
) -> None:
    """Run a service on each selected object the user may act on; one message per
    refusal, one summary."""
    succeeded = 0
    for obj in objects:
        task = task_of(obj)
        if not request.user.has_perm(permission, task):
            reason = (
                f"only staff may run {task.function}"
                if access.task_actionable(request.user, task)
                else "you may see it but not act on it"
            )
            modeladmin.message_user(request, f"{obj}: {reason}", messages.ERROR)
            continue
        try:
            action(obj)
        except (TransitionNotAllowed, TaskInputError) as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, done.format(n=succeeded), messages.SUCCESS)


class TaskForm(forms.ModelForm):
    """What the admin may edit on a task, checked as the services check it."""

    class Meta:
        model = Task
        fields = ["title", "description", "max_attempts"]

    def clean_title(self) -> str:
        try:
            return bounds.title_clean(self.cleaned_data.get("title", ""))
        except TaskInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_description(self) -> str:
        try:
            return bounds.description_clean(self.cleaned_data.get("description", ""))
        except TaskInputError as exc:
            raise forms.ValidationError(str(exc)) from None


def _person(request: HttpRequest) -> User | None:
    """Who acts, for the history (the admin needs a login; None only defensively)."""
    return request.user if isinstance(request.user, User) else None


def _task_of(obj: Model | None) -> Task | None:
    if obj is None or isinstance(obj, Task):
        return obj
    if isinstance(obj, Execution):
        return obj.task
    if isinstance(obj, Step):
        return obj.execution.task
    return None


class TaskRulesMixin:
    """Object permissions from tasks.access, on top of the model permissions."""

    model: type[Model]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        visible = access.tasks_visible(request.user)
        if self.model is Task:
            return qs.filter(pk__in=visible.values("pk"))
        if self.model is Execution:
            return qs.filter(task__in=visible.values("pk"))
        return qs.filter(execution__task__in=visible.values("pk"))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        task = _task_of(obj)
        return bool(
            super().has_view_permission(request, obj)  # type: ignore[misc]
            and (task is None or request.user.has_perm("tasks.view_task", task))
        )

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        task = _task_of(obj)
        return bool(
            super().has_change_permission(request, obj)  # type: ignore[misc]
            and (task is None or request.user.has_perm("tasks.change_task", task))
        )

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        task = _task_of(obj)
        return bool(
            super().has_delete_permission(request, obj)  # type: ignore[misc]
            and (task is None or request.user.has_perm("tasks.delete_task", task))
        )


class ExecutionInline(admin.TabularInline):
    model = Execution
    fields = ["number", "status", "created_at", "started_at", "finished_at", "error"]
    readonly_fields = ["number", "status", "created_at", "started_at", "finished_at", "error"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class StepInline(admin.TabularInline):
    model = Step
    fields = ["index", "name", "status", "started_at", "finished_at", "error"]
    readonly_fields = ["index", "name", "status", "started_at", "finished_at", "error"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(TaskRulesMixin, admin.ModelAdmin):
    form = TaskForm
    list_display = ["id", "title", "function", "status", "created_by", "group", "created_at"]
    list_filter = ["status", "function"]
    search_fields = ["title", "description"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "function",
        "args",
        "kwargs",
        "created_by",
        "group",
        "status",
        "latest_execution",
        "created_at",
        "updated_at",
        "rerun_of",
    ]
    inlines = [ExecutionInline]
    actions = ["retry_tasks"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tasks are made by the services (form, command, API), which check the function
        # and its arguments and enqueue the first execution.
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("tasks.change_task"))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The change page also shows the task's live status, progress and steps."""
        extra = dict(extra_context or {})
        task = selectors.task_detail(int(object_id)) if object_id.isdigit() else None
        if task is not None and access.task_visible(request.user, task):
            since = last_event_id()
            extra.update(renderers.task_detail_context(task))
            extra.update(
                admin=True,
                live_stream_url=(
                    f"{reverse('task_stream', args=[task.pk])}?"
                    f"{urlencode({'view': 'admin', 'last_event_id': since})}"
                ),
            )
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(
        description="Retry (a new execution of each failed or cancelled task)",
        permissions=["retry"],
    )
    def retry_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        _apply(
            self,
            request,
            queryset,
            lambda t: task_retry(task=t, by=_person(request)),
            "{n} task(s) retried",
            permission="tasks.retry_task",
            task_of=lambda t: t,
        )


@admin.register(Execution)
class ExecutionAdmin(TaskRulesMixin, admin.ModelAdmin):
    list_display = ["id", "task", "number", "status", "started_at", "finished_at", "worker_id"]
    list_filter = ["status"]
    search_fields = ["task__title"]
    list_select_related = ["task"]
    # Status moves only through the state machine (and its actions), never by editing.
    readonly_fields = [
        "task",
        "number",
        "status",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "progress_done",
        "progress_total",
        "progress_message",
        "prompt",
        "answer",
        "answers",
        "result",
        "worker_id",
        "lease_expires_at",
        "cancel_requested_at",
        "log_lines",
    ]
    inlines = [StepInline]
    actions = ["cancel_executions", "answer_execution"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("tasks.change_execution"))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Execution], search_term: str
    ) -> tuple[QuerySet[Execution], bool]:
        """Titles, or a task id (a number that fits an id: no overflowing lookup)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isascii() and term.isdigit() and len(term) <= 18:
            found |= queryset.filter(task_id=int(term))
        return found, duplicates

    @admin.action(
        description="Cancel (running ones stop at their next checkpoint)", permissions=["act"]
    )
    def cancel_executions(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        _apply(
            self,
            request,
            queryset.select_related("task"),
            lambda e: execution_cancel(execution=e, by=_person(request)),
            "{n} execution(s) cancelled or asked to stop",
            permission="tasks.cancel_task",
            task_of=lambda e: e.task,
        )

    @admin.action(
        description="Answer the selected execution waiting for input", permissions=["act"]
    )
    def answer_execution(
        self, request: HttpRequest, queryset: QuerySet[Execution]
    ) -> HttpResponse | None:
        executions = list(queryset.select_related("task")[:2])
        if len(executions) != 1:
            self.message_user(request, "select exactly one execution to answer", messages.ERROR)
            return None
        execution = executions[0]
        if not request.user.has_perm("tasks.answer_task", execution.task):
            self.message_user(
                request, f"{execution}: you may see it but not act on it", messages.ERROR
            )
            return None
        if execution.status != Status.WAITING_FOR_INPUT:
            self.message_user(
                request,
                f"execution {execution.pk} is {execution.status}; only an execution waiting "
                "for input can be answered",
                messages.ERROR,
            )
            return None
        form = AnswerForm(request.POST if "answer" in request.POST else None)
        spec = input_spec_read(execution.input_spec)
        if spec.get("choices"):  # one of them; the service checks it again
            form.fields["answer"] = forms.ChoiceField(
                choices=[(c, c) for c in spec["choices"]], widget=forms.RadioSelect
            )
        elif spec.get("default") and not form.is_bound:
            form.initial["answer"] = spec["default"]
        if form.is_bound and form.is_valid():
            _apply(
                self,
                request,
                [execution],
                lambda e: execution_answer(
                    execution=e, answer=form.cleaned_data["answer"], by=_person(request)
                ),
                "execution answered; it resumes shortly",
                permission="tasks.answer_task",
                task_of=lambda e: e.task,
            )
            return None
        return TemplateResponse(
            request,
            "admin/tasks/execution/answer.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Answer execution {execution.pk}",
                "execution": execution,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(Step)
class StepAdmin(TaskRulesMixin, admin.ModelAdmin):
    """Read-only: steps move only through their executions."""

    list_display = ["id", "execution", "index", "name", "status", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    list_select_related = ["execution", "execution__task"]
    readonly_fields = [
        "execution",
        "index",
        "name",
        "status",
        "started_at",
        "finished_at",
        "error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
