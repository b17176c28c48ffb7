"""Durations are written by the server; the page's script only counts a running one on."""

from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from tasks.web.templatetags import elapsed

LIVE_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "live.js"


def test_a_finished_duration_is_formatted_and_a_running_one_counts_whole_seconds() -> None:
    start = timezone.now() - timedelta(minutes=4, seconds=5, milliseconds=300)
    assert elapsed(None, None) == "—"
    assert elapsed(start, start + timedelta(milliseconds=850)) == "850 ms"
    assert elapsed(start, start + timedelta(seconds=12.34)) == "12.3 s"
    assert elapsed(start, start + timedelta(minutes=4, seconds=5)) == "4 min 05 s"
    assert elapsed(start, start + timedelta(hours=2, minutes=3)) == "2 h 03 min"
    running = elapsed(start, None)
    assert running.startswith(f'<span data-since="{start.isoformat()}">')
    assert running.endswith("</span> s")
    assert 245 <= int(running.split(">")[1].split("<")[0]) <= 246


def test_the_script_formats_no_duration() -> None:
    script = LIVE_JS.read_text()
    assert "data-since" in script
    for unit in ('" ms"', '" s"', '" min', '" h "', "toFixed", "padStart"):
        assert unit not in script


def test_elapsed_of_a_missing_execution_is_a_dash() -> None:
    """A row whose task has no execution yet: the template passes "" for both times."""
    from tasks.web.templatetags import elapsed

    assert elapsed("", "") == "—"
    assert elapsed(None, None) == "—"
