"""Small display helpers for the dashboard templates (`{% load dashboard %}`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from tasks.selectors import TaskFilters
from tasks.states import Status, StepStatus
from tasks.web.forms import function_label, pretty_json

register = template.Library()

_LABELS = {**dict(Status.choices), **dict(StepStatus.choices)}
# A symbol beside the colour, so status never rests on colour alone.
_SYMBOLS = {
    "pending": "○",
    "running": "◔",
    "waiting_for_input": "?",
    "succeeded": "✓",
    "failed": "✕",
    "cancelled": "⊘",
    "skipped": "↷",
}


@register.simple_tag
def status_badge(status: str) -> SafeString:
    """A status as a coloured badge with a symbol and its name."""
    return format_html(
        '<span class="badge badge-{}"><span class="badge-symbol" aria-hidden="true">{}</span>'
        "{}</span>",
        status,
        _SYMBOLS.get(status, "•"),
        _LABELS.get(status, status),
    )


@register.simple_tag
def elapsed(started_at: datetime | None, finished_at: datetime | None) -> str:
    """How long something took (`duration`); while it runs, the whole seconds so far in an
    element whose text static/js/live.js counts on from `data-since` (the script formats
    nothing: every duration's text is made here)."""
    if not isinstance(started_at, datetime):  # None, or "" from a missing object
        return "—"
    if not isinstance(finished_at, datetime):
        seconds = max(0, int((timezone.now() - started_at).total_seconds()))
        return format_html('<span data-since="{}">{}</span> s', started_at.isoformat(), seconds)
    return duration(finished_at - started_at)


@register.simple_tag
def elapsed_seconds(since: datetime | None, now: datetime | None = None) -> int:
    """Whole seconds from `since` to `now` (the first value a `data-since` counter shows;
    static/js/live.js counts on in the same unit)."""
    if not isinstance(since, datetime):
        return 0
    end = now if isinstance(now, datetime) else timezone.now()
    return max(0, int((end - since).total_seconds()))


def duration(value: timedelta | float) -> str:
    """A timedelta or a number of milliseconds as `850 ms`, `12.3 s`, `4 min 05 s`,
    `2 h 03 min`."""
    ms = value.total_seconds() * 1000 if isinstance(value, timedelta) else float(value)
    if ms < 1000:
        return f"{int(ms)} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def fn_label(path: str) -> str:
    return function_label(path or "")


@register.filter
def as_json(value: Any) -> str:
    return pretty_json(value)


@register.filter
def bounded(count: int, capped: bool) -> str:
    """A bounded count: `1,234` or `10,000+`."""
    return f"{count:,}+" if capped else f"{count:,}"


@register.simple_tag
def filter_url(filters: TaskFilters, **changes: Any) -> str:
    """`?query` of the list's filters with `changes` (page back to 1 unless given)."""
    page = changes.pop("page", 1)
    query = urlencode(filters.query(page=int(page), **changes))
    return f"?{query}" if query else "?"
