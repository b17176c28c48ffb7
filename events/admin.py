"""The event log, read-only. A user sees the events their grant allows (events.audience:
the policy the emitting app registered; for tasks, the events of the tasks they may see),
matched in SQL on each event's audience, as streams and replay do: events needs to know
nothing of tasks for that."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from events import audience
from events.api import audience_q
from events.models import Event


def _grant(request: HttpRequest) -> audience.Grant:
    cached: audience.Grant | None = getattr(request, "_event_grant", None)
    if cached is None:
        cached = audience.grant_for(request.user)
        request._event_grant = cached  # type: ignore[attr-defined]
    return cached


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "at", "task_id", "execution_id", "data"]
    list_filter = ["type"]
    search_fields = ["type"]
    date_hierarchy = "at"
    ordering = ["-id"]
    list_per_page = 100
    show_full_result_count = False  # counting a large log is slow; the log is append-only

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).filter(audience_q(_grant(request)))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Event], search_term: str
    ) -> tuple[QuerySet[Event], bool]:
        """A type, or a task or execution id (a number that fits an id)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isascii() and term.isdigit() and len(term) <= 18:
            found |= queryset.filter(task_id=int(term)) | queryset.filter(execution_id=int(term))
        return found, duplicates

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        allowed = super().has_view_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return _grant(request).allows(getattr(obj, "audience", ""))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
