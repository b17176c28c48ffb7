from django.contrib import admin

from events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "at", "task_id", "execution_id", "data"]
    list_filter = ["type"]
    search_fields = ["=task_id", "=execution_id", "type"]
    date_hierarchy = "at"
    ordering = ["-id"]
    list_per_page = 100
    show_full_result_count = False  # counting a large log is slow; the log is append-only

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
