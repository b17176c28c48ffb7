"""The header over each page's stream (PageFilter, PageRenderer), the operations pages'
renderers and the charts' figures."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.filters import EventFilter
from tasks import ops
from tasks.fleet import worker_register
from tasks.models import Execution
from tasks.states import Status
from tasks.web import chrome, ops_renderers
from tasks.web.charts import durations_chart, throughput_chart
from tests.factories import make_execution, make_task
from tests.tasks.engine import run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def event(type_: str, task_id: int | None = 1, **data) -> dict:
    return {"id": 10**9, "type": type_, "task_id": task_id, "execution_id": None, "data": data}


def test_a_page_filter_carries_the_page_and_the_header_types():
    page = chrome.PageFilter(page=EventFilter(task_id=5))
    assert page.matches(event("execution.log", task_id=5))
    assert not page.matches(event("execution.log", task_id=6))
    assert page.matches(event("execution.status", task_id=6))  # the header's
    assert page.matches(event("worker.lost", task_id=None))
    assert not chrome.PageFilter().matches(event("step.started"))
    # Wide for the hub (no topic of its own), and equal filters are one.
    assert page.task_id is None and page == chrome.PageFilter(page=EventFilter(task_id=5))


def test_the_header_is_rendered_per_person_and_only_when_it_moves(user, django_user_model):
    bob = django_user_model.objects.create_user("bob")
    task = make_task(created_by=user, kwargs={"steps": 0, "ask": "Go?"})
    run_runnable()
    waiting = event(
        "execution.status", task_id=task.pk, **{"from": "running", "to": "waiting_for_input"}
    )
    for_alice = chrome.PageRenderer(None, None, user).render(waiting)
    assert for_alice is not None
    assert '<span id="inbox-count" class="pill pill-waiting">1</span>' in for_alice
    assert f'data-title="#{task.pk} waits for your answer"' in for_alice
    # Not bob's task: his header stays as it is, and he is not notified.
    assert chrome.PageRenderer(None, None, bob).render(waiting) is None
    progress = event("execution.progress", task_id=task.pk, done=1)
    assert chrome.PageRenderer(None, None, user).render(progress) is None
    names = {chrome.PageRenderer(None, None, u).name for u in (user, bob)}
    assert len(names) == 2  # the hub caches renders per person


def test_the_page_renders_once_for_everyone_and_the_snapshot_has_the_header(user):
    task = make_task(created_by=user)
    calls = []

    class Inner:
        name = "test.inner"

        def render(self, e):
            calls.append(e["id"])
            return "<p id='x'></p>"

        def snapshot(self):
            return "<p id='snap'></p>"

    e = event("task.created", task_id=task.pk, title="t", status="pending")
    e["id"] = 4242
    one = chrome.PageRenderer(Inner(), EventFilter(task_id=task.pk), user)
    two = chrome.PageRenderer(Inner(), EventFilter(task_id=task.pk), user)
    assert "<p id='x'></p>" in one.render(e) and "<p id='x'></p>" in two.render(e)
    assert calls == [4242]
    snap = one.snapshot()
    assert snap.startswith("<p id='snap'></p>") and 'id="worker-banner"' in snap
    assert 'id="notify"' not in snap  # a snapshot never notifies


def test_workers_renderer_skips_what_a_later_event_redraws():
    worker = worker_register(
        worker_id="w:1", kind="worker", host="h", pid=1, concurrency=2, lease_seconds=30
    )
    renderer = ops_renderers.WorkersRenderer()
    from events.models import Event

    started = Event.objects.get(type="worker.started").as_dict()
    assert started["data"] == worker.as_payload()
    html = renderer.render(started)
    assert html is not None and 'id="workers"' in html and "w:1" in html
    assert 'id="queue"' not in html  # a worker event redraws the workers only
    # An earlier worker event: the later worker.started in the log redraws the same region.
    assert renderer.render({**started, "id": started["id"] - 1}) is None
    assert renderer.render({"id": 0, "type": "step.started", "task_id": 1, "data": {}}) is None


def test_inbox_renderer_redraws_on_waiting_and_answers(user):
    renderer = ops_renderers.InboxRenderer(user)
    assert renderer.name == f"ops.inbox:u{user.pk}"
    make_task(created_by=user, kwargs={"steps": 0, "ask": "Go?"})
    run_runnable()
    execution = Execution.objects.get()
    last = {"id": 10**9, "type": "execution.answered", "task_id": 1, "data": {}}
    html = renderer.render(last)
    assert html is not None and f'id="inbox-{execution.pk}"' in html
    assert renderer.render({**last, "type": "execution.log"}) is None


def test_history_renderer_appends_one_row(user):
    task = make_task("History", created_by=user)
    from events.models import Event

    created = Event.objects.get(type="task.created", task_id=task.pk).as_dict()
    html = ops_renderers.HistoryRenderer(task.pk).render(created)
    assert 'hx-swap-oob="beforeend:#history-rows"' in html
    assert f'id="event-{created["id"]}"' in html and "created “History”" in html
    assert ops_renderers.HistoryRenderer(task.pk + 1).render(created) is None


def test_finished_per_minute_and_percentiles():
    now = timezone.now()
    for status, minutes_ago, seconds in [
        (Status.SUCCEEDED, 0, 1),
        (Status.SUCCEEDED, 0, 3),
        (Status.FAILED, 5, 10),
        (Status.SUCCEEDED, 90, 1),  # over an hour ago: left out
    ]:
        execution = make_execution(status)
        finished = now - timedelta(minutes=minutes_ago)
        Execution.objects.filter(pk=execution.pk).update(
            finished_at=finished, started_at=finished - timedelta(seconds=seconds)
        )
    minutes = ops.finished_per_minute(now)
    assert len(minutes) == 60
    assert (minutes[-1].succeeded, minutes[-1].failed) == (2, 0)
    assert (minutes[-6].succeeded, minutes[-6].failed) == (0, 1)
    [figures] = ops.durations_by_function(now)
    assert (figures.count, figures.p50_ms, figures.p95_ms) == (3, 3000, 10000)
    chart = throughput_chart(minutes)
    assert (chart.total_succeeded, chart.total_failed) == (2, 1)
    assert len(chart.succeeded) == 1 and len(chart.failed) == 1
    assert chart.succeeded[0].height == pytest.approx(120)  # the peak fills the plot
    rows = durations_chart([figures]).rows
    assert (
        rows[0].p95.width > rows[0].p50.width and rows[0].text == "p50 3.0 s · p95 10.0 s · 3 runs"
    )


def test_the_header_is_not_redrawn_for_tasks_the_viewer_cannot_see(
    user, django_user_model, django_assert_num_queries
):
    user.user_permissions.clear()  # alice without view_all: she sees her own tasks only
    user = django_user_model.objects.get(pk=user.pk)
    bob = django_user_model.objects.create_user("bob")
    theirs = make_task(created_by=bob)
    status = event("task.status", task_id=theirs.pk, **{"from": "pending", "to": "running"})
    status["id"] = 777_001
    alice = chrome.PageRenderer(None, None, user)
    assert chrome.PageRenderer(None, None, bob).render(status) is not None
    # Her grant, once (permissions and groups); the task's audience was read for bob.
    with django_assert_num_queries(3):
        assert alice.render(status) is None
    with django_assert_num_queries(0):
        assert alice.render({**status}) is None
