"""Small display helpers for the dashboard templates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from tasks.forms import function_label, pretty_json
from tasks.states import Status, StepStatus

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


@register.filter
def duration(value: Any) -> str:
    """A timedelta or a number of milliseconds as `850 ms`, `12.3 s`, `4 min 05 s`..."""
    if value is None or value == "":
        return "—"
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
def filter_url(filters, **changes: Any) -> str:
    """`?query` of the list's filters with `changes` (page back to 1 unless given)."""
    from urllib.parse import urlencode

    page = changes.pop("page", 1)
    query = urlencode(filters.query(page=int(page), **changes))
    return f"?{query}" if query else "?"
