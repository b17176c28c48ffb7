"""Workers and queue (/workers/) and the no-worker banner, in Chromium, against a real
`serve --no-worker` and real `manage.py worker` processes joined by Redis. A module of its
own: no in-process worker may take the executions."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tasks.models import Worker
from tests.browser.conftest import create, serve_env, wait_live
from tests.browser.ops_helpers import screenshot
from tests.conftest import REDIS_URL
from tests.servers import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BANNER = "No worker is running: 1 task waits. Start one with python manage.py worker."


@pytest.fixture
def shared(channel_layer_prefix):
    return {"REDIS_URL": REDIS_URL, "CHANNEL_LAYER_PREFIX": channel_layer_prefix}


@pytest.fixture
def no_worker_server(start_server, shared):
    return start_server("serve", env=serve_env(**shared), args=["--no-worker"])


def test_a_worker_killed_with_sigkill_shows_as_lost_on_an_open_page(
    no_worker_server, open_page, staff_user, shared
):
    page = open_page(no_worker_server, "/workers/", username="root")
    wait_live(page)
    expect(page.locator("#workers")).to_contain_text("No worker has started yet")
    expect(page.locator("#worker-banner")).to_have_text("")

    # Work arrives and nothing consumes it: the banner says so, on this page, live.
    task = create(title="Nightly import", kwargs={"steps": 1, "delay": 60}, created_by=staff_user)
    expect(page.locator("#worker-banner")).to_have_text(BANNER)
    queue = page.locator("#queue tr[data-function='tasks.examples.pipeline']")
    expect(queue.locator(".queue-pending")).to_have_text("1")

    worker = WorkerProcess(env=serve_env(**shared), args=["--lease", "1"]).start()
    try:
        row = page.locator("#workers tbody tr").first
        expect(row.locator(".col-state")).to_have_text("●Running")
        expect(row.locator(".col-running")).to_contain_text(f"#{task.pk}")
        expect(page.locator("#worker-banner")).to_have_text("")
        expect(page.locator("#queue")).to_contain_text("Nothing is pending")
        pid = worker.process.pid
        expect(row).to_contain_text(str(pid))
        screenshot(page, "workers")
    finally:
        worker.kill()
    assert worker.process.returncode == -9

    # Nobody told anyone: the server's reaper notices the silence and says "lost".
    expect(row.locator(".col-state")).to_contain_text("Lost")
    expect(row.locator(".worker-reason")).to_contain_text("no heartbeat for")
    lost = Worker.objects.get(pid=pid)
    assert lost.state == Worker.State.LOST
    # Its execution failed as "worker lost", counted in the chart, and nothing runs.
    expect(page.locator("#chart-throughput")).to_have_attribute("data-failed", "1")
    expect(page.locator("#worker-banner")).to_have_text("")
    assert page.console_errors == []


def test_a_stopped_worker_and_pending_work_bring_the_banner_to_every_page(
    no_worker_server, open_page, user, shared
):
    page = open_page(no_worker_server)  # alice, on the task list
    wait_live(page)
    worker = WorkerProcess(env=serve_env(**shared)).start()
    try:
        expect(page.locator("#worker-banner")).to_have_text("")
    finally:
        assert worker.stop() == 0
    assert Worker.objects.get(state=Worker.State.STOPPED)
    task = create(title="Left waiting", kwargs={"steps": 0}, created_by=user)
    expect(page.locator("#worker-banner")).to_have_text(BANNER)
    page.goto(f"{no_worker_server.url}/tasks/{task.pk}/")
    wait_live(page)
    expect(page.locator("#worker-banner")).to_have_text(BANNER)
    worker = WorkerProcess(env=serve_env(**shared)).start()
    try:
        expect(page.locator("#task-head .badge")).to_have_text("✓Succeeded")
        expect(page.locator("#worker-banner")).to_have_text("")
    finally:
        worker.stop()
    assert page.console_errors == []
    # alice holds tasks.view_all_tasks (the shared fixture): the workers page is hers too
    # (contract: staff and view_all holders; a plain user's 403 is in test_views_ops).
    response = page.goto(f"{no_worker_server.url}/workers/")
    assert response is not None and response.status == 200


def test_screenshot_of_a_busy_fleet(no_worker_server, open_page, user, staff_user, shared):
    """Two workers, work running and queued, an hour of history: what the page looks like."""
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import Execution
    from tasks.states import Status
    from tests.factories import make_execution

    now = timezone.now()
    for i in range(80):  # an hour of finished work, two functions, some failures
        failed = i % 9 == 0
        shell = i % 3 == 0
        execution = make_execution(
            Status.FAILED if failed else Status.SUCCEEDED,
            title=f"History {i}",
            function="tasks.examples.shell" if shell else "tasks.examples.pipeline",
            kwargs={"command": "true"} if shell else {},
            created_by=staff_user,
        )
        finished = now - timedelta(minutes=(i * 37) % 60, seconds=i)
        took = timedelta(seconds=(2 + i % 7) * (4 if shell else 1))
        Execution.objects.filter(pk=execution.pk).update(
            started_at=finished - took, finished_at=finished
        )
    page = open_page(no_worker_server, "/workers/", username="root", color_scheme="light")
    wait_live(page)
    for i in range(9):
        create(title=f"Render video {i}", kwargs={"steps": 30, "delay": 2}, created_by=user)
    expect(page.locator("#worker-banner")).to_contain_text("No worker is running: 9 tasks wait.")
    screenshot(page, "banner")
    workers = [
        WorkerProcess(env=serve_env(**shared), args=["--concurrency", str(n)]).start()
        for n in (2, 3)
    ]
    try:
        expect(page.locator("#queue .queue-pending")).to_have_text("4")
        expect(page.locator("#workers .col-running a")).to_have_count(5)
        expect(page.locator("#worker-banner")).to_have_text("")
        screenshot(page, "workers")
        page.emulate_media(color_scheme="dark")
        screenshot(page, "workers-dark")
    finally:
        for worker in workers:
            worker.kill()
