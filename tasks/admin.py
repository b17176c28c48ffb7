from django.contrib import admin

from tasks.models import Execution, Step, Task


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
        "result",
        "worker_id",
        "lease_expires_at",
        "cancel_requested_at",
    ]
    inlines = [StepInline]

    def has_add_permission(self, request) -> bool:
        return False
