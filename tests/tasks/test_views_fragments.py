"""The renderers behind the streams: current state as out-of-band swaps, escaped."""

import pytest

from events.models import Event
from tasks.forms import task_filters_parse
from tasks.renderers import TaskDetailRenderer, task_list_renderer
from tasks.selectors import TaskFilters
from tests.factories import make_execution, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

XSS = "<img src=x onerror=alert(1)>"


def last(type_: str, **filters) -> dict:
    return Event.objects.filter(type=type_, **filters).order_by("-id").first().as_dict()


def test_task_created_renders_rows_counts_and_pager_in_templates():
    task = make_task(XSS)
    html = task_list_renderer(TaskFilters()).render(last("task.created"))
    assert '<template><tbody id="task-rows" hx-swap-oob="true">' in html
    assert f'id="task-{task.pk}"' in html
    assert 'id="status-counts"' in html and 'id="pager"' in html
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "csrfmiddlewaretoken" not in html


def test_a_replayed_event_renders_the_current_state():
    execution = make_execution("running", title="moving")
    created = last("task.created")
    execution.transition("succeeded")
    renderer = task_list_renderer(TaskFilters())
    # An old event, rendered now, shows the task as it is now: replays converge.
    assert "badge-succeeded" in renderer.render(created)


def test_the_list_renderer_follows_its_filters():
    make_task("pending one")
    make_execution("failed", title="failed one")
    failed_only, _ = task_filters_parse({"status": "failed"})
    html = task_list_renderer(failed_only).render(last("task.created"))
    assert "failed one" in html and "pending one" not in html
    assert task_list_renderer(failed_only).name != task_list_renderer(TaskFilters()).name
    assert task_list_renderer(failed_only) is task_list_renderer(failed_only)


def test_progress_renders_one_row():
    execution = make_execution("running", title="row")
    event = {"id": 1, "type": "execution.progress", "task_id": execution.task_id}
    html = task_list_renderer(TaskFilters()).render(event)
    assert html.strip().startswith(f'<template><tr id="task-{execution.task_id}"')
    assert "task-rows" not in html
    # A row the page does not show is not sent (htmx would report a missing target).
    failed_only, _ = task_filters_parse({"status": "failed"})
    assert task_list_renderer(failed_only).render(event) is None


def test_detail_renderer_regions_by_event_type():
    execution = make_execution("waiting_for_input", title="ask")
    renderer = TaskDetailRenderer(execution.task_id)
    status = renderer.render(last("execution.status"))
    assert 'id="task-head"' in status and 'id="task-prompt"' in status
    assert 'id="task-log"' not in status
    assert "Waiting for your answer" in status
    assert "csrfmiddlewaretoken" not in status  # htmx sends the page's token instead
    log = {"id": 9, "type": "execution.log", "task_id": execution.task_id}
    assert (
        renderer.render({**log, "execution_id": execution.pk})
        .strip()
        .startswith('<ol id="task-log"')
    )
    assert renderer.render({**log, "execution_id": execution.pk + 1000}) is None
    assert renderer.render({**log, "task_id": execution.task_id + 1000}) is None
    snapshot = renderer.snapshot({})
    for region in ("head", "progress", "prompt", "steps", "executions", "log"):
        assert f'id="task-{region}"' in snapshot
