from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tasks.models import Execution, Step, Task
from tasks.services import ANSWER_MAX_LENGTH, execution_answer, execution_cancel, task_retry
from tasks.states import Status, TaskInputError, TransitionNotAllowed


def _apply(modeladmin, request, objects, action, done: str) -> None:
    """Run a service on each selected object; one message per refusal, one summary."""
    succeeded = 0
    for obj in objects:
        try:
            action(obj)
        except (TransitionNotAllowed, TaskInputError) as exc:
            modeladmin.message_user(request, str(exc), messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, done.format(n=succeeded), messages.SUCCESS)


class AnswerForm(forms.Form):
    answer = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=ANSWER_MAX_LENGTH, strip=False
    )


class ExecutionInline(admin.TabularInline):
    model = Execution
    fields = ["number", "status", "created_at", "started_at", "finished_at", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class StepInline(admin.TabularInline):
    model = Step
    fields = ["index", "name", "status", "started_at", "finished_at", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "function", "status", "created_at"]
    list_filter = ["status", "function"]
    search_fields = ["title", "description"]
    date_hierarchy = "created_at"
    readonly_fields = ["status", "latest_execution", "created_at", "updated_at", "created_by"]
    inlines = [ExecutionInline]
    actions = ["retry_tasks"]

    @admin.action(description="Retry (a new execution of each failed or cancelled task)")
    def retry_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        _apply(self, request, queryset, lambda t: task_retry(task=t), "{n} task(s) retried")


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "number", "status", "started_at", "finished_at", "worker_id"]
    list_filter = ["status"]
    search_fields = ["=task__id", "task__title"]
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
    ]
    inlines = [StepInline]
    actions = ["cancel_executions", "answer_execution"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Cancel (running ones stop at their next checkpoint)")
    def cancel_executions(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        _apply(
            self,
            request,
            queryset,
            lambda e: execution_cancel(execution=e),
            "{n} execution(s) cancelled or asked to stop",
        )

    @admin.action(description="Answer the selected execution waiting for input")
    def answer_execution(
        self, request: HttpRequest, queryset: QuerySet[Execution]
    ) -> HttpResponse | None:
        executions = list(queryset[:2])
        if len(executions) != 1:
            self.message_user(request, "select exactly one execution to answer", messages.ERROR)
            return None
        execution = executions[0]
        if execution.status != Status.WAITING_FOR_INPUT:
            self.message_user(
                request,
                f"execution {execution.pk} is {execution.status}; only an execution waiting "
                "for input can be answered",
                messages.ERROR,
            )
            return None
        form = AnswerForm(request.POST if "answer" in request.POST else None)
        if form.is_bound and form.is_valid():
            _apply(
                self,
                request,
                [execution],
                lambda e: execution_answer(execution=e, answer=form.cleaned_data["answer"]),
                "execution answered; it resumes shortly",
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
