"""The renderers behind the streams: current state as out-of-band swaps, escaped, and
no render for an event a later one re-renders anyway."""

import pytest

from events.api import event_emit
from events.models import Event
from tasks.selectors import TaskFilters
from tasks.web.forms import task_filters_parse
from tasks.web.renderers import TaskDetailRenderer, task_list_renderer
from tests.factories import make_execution, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

XSS = "<img src=x onerror=alert(1)>"


def last(type_: str | None = None, **filters) -> dict:
    events = Event.objects.filter(**filters)
    if type_:
        events = events.filter(type=type_)
    return events.order_by("-id").first().as_dict()


def after_last(type_: str, task_id: int, **fields) -> dict:
    """An event newer than any in the log (as the hub sees the newest one)."""
    return {"id": last()["id"] + 1, "type": type_, "task_id": task_id, **fields}


def test_page_events_render_rows_counts_and_pager_in_templates():
    task = make_task(XSS)
    html = task_list_renderer(TaskFilters()).render(last())  # execution.created
    assert '<template><tbody id="task-rows" hx-swap-oob="true">' in html
    assert f'id="task-{task.pk}"' in html
    assert 'id="status-counts"' in html and 'id="pager"' in html
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "csrfmiddlewaretoken" not in html


def test_a_replayed_event_converges_on_the_current_state():
    execution = make_execution("running", title="moving")
    created = last("task.created")
    execution.transition("succeeded")
    renderer = task_list_renderer(TaskFilters())
    # The old event needs no render: later ones re-render the page as it is now.
    assert renderer.render(created) is None
    assert "badge-succeeded" in renderer.render(last("task.status"))


def test_the_list_renderer_follows_its_filters():
    make_task("pending one")
    make_execution("failed", title="failed one")
    failed_only, _ = task_filters_parse({"status": "failed"})
    html = task_list_renderer(failed_only).render(last("task.status"))
    assert "failed one" in html and "pending one" not in html
    assert task_list_renderer(failed_only).name != task_list_renderer(TaskFilters()).name
    assert task_list_renderer(failed_only) is task_list_renderer(failed_only)


def test_progress_renders_one_row_the_page_shows():
    execution = make_execution("running", title="row")
    event = after_last("execution.progress", execution.task_id)
    html = task_list_renderer(TaskFilters()).render(event)
    assert html.strip().startswith(f'<template><tr id="task-{execution.task_id}"')
    assert "task-rows" not in html
    # A row the page does not show is not sent (htmx would report a missing target).
    failed_only, _ = task_filters_parse({"status": "failed"})
    assert task_list_renderer(failed_only).render(event) is None


def test_a_burst_renders_only_what_is_not_rendered_again_later():
    execution = make_execution("running", title="busy")
    lines = []
    for i in range(3):
        event_emit(
            type="execution.log",
            task_id=execution.task_id,
            execution_id=execution.pk,
            data={"level": "info", "message": f"line {i}"},
        )
        lines.append(last("execution.log"))
    renderer = TaskDetailRenderer(execution.task_id, may_act=True)
    assert renderer.render(lines[0]) is None  # line 2 re-renders the log region
    assert "line 0" in renderer.render(lines[-1]) and "line 2" in renderer.render(lines[-1])
    # A status event is not covered by later log lines: it still renders its regions.
    running = last("task.status")
    assert 'id="task-head"' in renderer.render(running)


def test_detail_renderer_regions_by_event_type():
    execution = make_execution("waiting_for_input", title="ask")
    renderer = TaskDetailRenderer(execution.task_id, may_act=True)
    status = renderer.render(last("task.status"))
    assert 'id="task-head"' in status and 'id="task-prompt"' in status
    assert 'id="task-log"' not in status
    assert "Waiting for your answer" in status
    assert "csrfmiddlewaretoken" not in status  # htmx sends the page's token instead
    log = after_last("execution.log", execution.task_id)
    assert (
        renderer.render({**log, "execution_id": execution.pk})
        .strip()
        .startswith('<ol id="task-log"')
    )
    assert renderer.render({**log, "execution_id": execution.pk + 1000}) is None
    assert renderer.render({**log, "task_id": execution.task_id + 1000}) is None
    snapshot = renderer.snapshot()
    for region in ("head", "progress", "prompt", "steps", "executions", "log"):
        assert f'id="task-{region}"' in snapshot
