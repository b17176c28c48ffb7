"""The dashboard across processes joined by Redis only. A module of its own: no other
worker (like the in-process one of test_dashboard's server) may take its executions."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import create_task_cli, serve_env, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def row(page, task_id: int):
    return page.locator(f"#task-{task_id}")


@pytest.mark.redis
def test_many_processes_over_redis_reach_the_open_page(
    start_server, open_page, channel_layer_prefix
):
    """daphne, a separate `manage.py worker` and `create_task`, three processes joined by
    Redis only: the safety tick is set beyond the test, so the page moves through the
    channel layer."""
    from tests.conftest import REDIS_URL
    from tests.servers import WorkerProcess

    shared = {"REDIS_URL": REDIS_URL, "CHANNEL_LAYER_PREFIX": channel_layer_prefix}
    own = start_server("daphne", env=serve_env(**shared, EVENTS_SAFETY_TICK_SECONDS="600"))
    worker = WorkerProcess(env=serve_env(**shared)).start()
    try:
        page = open_page(own)
        wait_live(page)
        task_id = create_task_cli("Over Redis", '{"steps": 3, "delay": 1.0}', **shared)
        status = row(page, task_id).locator(".col-status")
        expect(status).to_have_text("◔Running")  # for three seconds
        expect(row(page, task_id).locator(".col-step")).to_have_text("step 2 of 3")
        expect(status).to_have_text("✓Succeeded")
        expect(row(page, task_id).locator(".col-step")).to_have_text("step 3 of 3")
    finally:
        worker.stop()
