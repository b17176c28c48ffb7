"""Chromium's own EventSource, in page JavaScript on the server's origin, following a quiet
task's /events/ stream through `end` rotations and across a server restart: it resends
the last id it was given (the first frame's `id:`, or `end`'s), so every matching event
arrives exactly once, in order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from events import types
from tests.browser.conftest import LIVE, serve_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUIET = 99  # a task id that no event is about until the test says so
PAGE = "/tasks/new/"  # a page of the origin without a stream of its own

FOLLOW = """([url, names]) => {
  window.__got = [];
  window.__opens = 0;
  window.__ends = 0;
  window.__errors = 0;
  const source = new EventSource(url);
  window.__source = source;
  source.addEventListener("open", () => { window.__opens += 1; });
  source.addEventListener("error", () => { window.__errors += 1; });
  source.addEventListener("end", () => { window.__ends += 1; });
  for (const name of names) {
    source.addEventListener(name, (event) => { window.__got.push(Number(event.lastEventId)); });
  }
}"""


@pytest.fixture(autouse=True)
def quiet_task(transactional_db: None) -> None:
    """`/events/?task=N` is 404 for a task that does not exist: QUIET is a real task."""
    from django.db import connections

    from tasks.models import Task

    def run() -> None:
        try:
            Task.objects.create(pk=QUIET, title="quiet", function="tasks.examples.pipeline")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


def emit(task_id: int, n: int = 1) -> list[int]:
    """Events committed from a thread of its own (this one runs Playwright's loop)."""
    from django.db import connections

    from events.api import event_emit

    def run() -> list[int]:
        try:
            return [
                event_emit(
                    type="execution.log",
                    task_id=task_id,
                    execution_id=task_id,
                    data={"message": str(i)},
                ).pk
                for i in range(n)
            ]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def follow(page, url: str) -> None:
    page.evaluate(FOLLOW, [url, list(types.registered())])
    # Functions, not expressions: the page's CSP forbids eval (a string expression).
    page.wait_for_function("() => window.__opens >= 1", timeout=LIVE)


def got(page) -> list[int]:
    return page.evaluate("window.__got")


def wait_for(page, last: int) -> None:
    try:
        page.wait_for_function("(id) => window.__got.includes(id)", arg=last, timeout=LIVE)
    except PlaywrightTimeoutError:
        raise AssertionError(f"event {last} never arrived; received {got(page)}") from None


def test_event_source_follows_a_quiet_task_through_ends_exactly_once(start_server, open_page):
    server = start_server("serve", env=serve_env(EVENTS_STREAM_MAX_SECONDS="1"))
    emit(1)
    page = open_page(server, PAGE)
    follow(page, f"/events/?task={QUIET}")
    matching: list[int] = []
    for rotation in range(4):
        emit(1, 2)  # while connected: other tasks only
        ends = page.evaluate("window.__ends")
        page.wait_for_function("(n) => window.__ends > n", arg=ends, timeout=LIVE)
        # Between `end` and the reconnection (retry: 2000): what was lost before.
        emit(1)
        if rotation >= 2:  # two rotations with nothing matching at all, then some
            matching += emit(QUIET, 2)
            emit(1)
    wait_for(page, matching[-1])
    assert got(page) == matching
    # Every page has its header's stream now; htmx's SSE extension logs each of its own
    # `end` reconnections (1 s here) as "[object Event]". Nothing else may be logged.
    assert [e for e in page.console_errors if e != "[object Event]"] == []


def test_event_source_follows_a_quiet_task_across_a_restart_exactly_once(start_server, open_page):
    server = start_server("serve", env=serve_env())
    emit(1)
    page = open_page(server, PAGE)
    follow(page, f"/events/?task={QUIET}")
    server.stop()  # before the stream sent any event
    page.wait_for_function("() => window.__errors >= 1", timeout=LIVE)
    down = [*emit(QUIET, 2), *emit(1), *emit(QUIET)]
    matching = [down[0], down[1], down[3]]
    server.start()  # the same port; the browser resends the first frame's id
    wait_for(page, matching[-1])
    later = emit(QUIET)
    wait_for(page, later[0])
    assert got(page) == matching + later
    assert page.evaluate("window.__source.readyState") == 1  # its own reconnection, open


# Counts the `end` events of the dashboard's own stream (htmx's EventSource) and keeps
# their ids; an init script, so that it is in place before the page opens its stream.
WATCH_ENDS = """
window.__ends = 0;
document.addEventListener("htmx:sseOpen", (event) => {
  const source = event.detail.source;
  if (source.__watched) return;
  source.__watched = true;
  source.addEventListener("end", (end) => {
    window.__ends += 1;
    window.__endId = end.lastEventId;
  });
});
"""


def test_dashboard_stream_recreated_by_htmx_resumes_from_the_id_end_carried(
    start_server, open_page, user
):
    """live.js takes `end`'s id as the page's resume point: a connection htmx re-creates
    (after a fatal error) resumes from it, not from the page's render, even when no
    fragment came (events the page shows nothing for still move the position)."""
    from django.contrib.sessions.models import Session

    from tests.browser.conftest import create, log_in, wait_live

    server = start_server("serve", env=serve_env(EVENTS_STREAM_MAX_SECONDS="4"))
    emit(1)
    page = open_page(server, PAGE)
    page.context.add_init_script(WATCH_ENDS)
    page.goto(server.url + "/")
    wait_live(page)
    rendered = int(page.locator("#live").get_attribute("data-last-event-id"))
    quiet = emit(QUIET, 3)  # execution.log: not a type the list renders
    # Its reconnection after `end` will get 401; the extension then re-creates the
    # EventSource through live.js, with the resume point in the URL.
    Session.objects.all().delete()
    page.wait_for_function("() => window.__ends >= 1", timeout=LIVE)
    end_id = page.evaluate("window.__endId")
    assert int(end_id) > rendered
    assert end_id == str(quiet[-1])  # the position the stream reached

    with page.expect_request(
        lambda request: "/stream/?" in request.url and f"last_event_id={end_id}" in request.url,
        timeout=LIVE,
    ):
        pass
    log_in(page.context.new_page(), server.url, "alice")  # a session again
    wait_live(page)
    task = create(title="After the re-creation", kwargs={"steps": 0}, created_by=user)
    row = page.locator(f"#task-{task.pk} .col-title a")
    row.wait_for(timeout=LIVE)
    assert row.inner_text() == "After the re-creation"
