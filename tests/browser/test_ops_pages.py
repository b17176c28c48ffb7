"""The operations pages in Chromium against a real `serve` (daphne plus its in-process
worker): bulk actions, run again with changes, questions that fit, the inbox and its count,
notifications, history, charts, the admin's live task page, and the log's follow mode.

Two people: alice (the `user` fixture) and root (a superuser, who may see and act on
everything). Every wait is Playwright's, with a deadline."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from events.models import Event
from tasks.models import Execution, Task
from tasks.states import Status
from tests.browser.conftest import create, serve_env, wait_live
from tests.browser.ops_helpers import screenshot, script_errors
from tests.servers import ServerProcess
from tests.tasks.engine import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def ops_server(django_db_setup, django_db_blocker):
    """One `serve` for the module, its worker wide enough to run 50 tasks at once."""
    process = ServerProcess("serve", env=serve_env(WORKER_CONCURRENCY="60"))
    process.start()
    yield process
    process.stop()
    # What the server said, for a failure's post-mortem.
    (Path(tempfile.gettempdir()) / "taskstream-ops-server.log").write_text(process.output)


def row(page, task_id: int):
    return page.locator(f"#task-{task_id}")


# --- 2. bulk actions ---------------------------------------------------------------------


def test_bulk_cancel_of_50_running_tasks(ops_server, open_page, user):
    tasks = [
        create(title=f"Crawl shard {i:02d}", kwargs={"steps": 1, "delay": 300}, created_by=user)
        for i in range(50)
    ]
    page = open_page(ops_server, "/?status=running")
    wait_live(page)
    expect(page.locator('.count-n[data-status="running"]')).to_have_text("50")
    expect(page.locator("#pager")).to_have_attribute("data-count", "50")

    page.locator("#select-page").check()
    expect(page.locator("#bulk-count")).to_have_text("25 selected")
    page.get_by_role("button", name="Select all 50 tasks matching this filter").click()
    expect(page.locator("#bulk-count")).to_have_text(
        "All 50 tasks matching this filter are selected"
    )
    page.get_by_role("button", name="Cancel selected…").click()
    expect(page.locator("#bulk-panel")).to_contain_text("Cancel 50 tasks?")
    screenshot(page, "bulk-confirm")
    assert Execution.objects.filter(cancel_requested_at__isnull=False).count() == 0

    page.get_by_role("button", name="Cancel 50 tasks").click()
    expect(page.locator("#bulk-panel .bulk-result")).to_have_text("Cancelled 50 of 50 tasks.")
    # Running ones stop at their next checkpoint; the filtered list empties, live.
    expect(page.locator('.count-n[data-status="cancelled"]')).to_have_text("50")
    expect(page.locator("#task-rows tr.empty")).to_be_visible()
    screenshot(page, "bulk-done")
    statuses = set(Execution.objects.filter(task__in=tasks).values_list("status", flat=True))
    assert statuses == {Status.CANCELLED}
    cancelled_by = set(Execution.objects.values_list("cancelled_by__username", flat=True))
    assert cancelled_by == {"alice"}
    assert page.console_errors == [], page.console_errors


def test_bulk_retry_of_selected_rows_says_what_was_refused(ops_server, open_page, user):
    failed = create(title="Broke", kwargs={"steps": 1, "delay": 0, "fail_at": 0}, created_by=user)
    done = create(title="Fine", kwargs={"steps": 0}, created_by=user)
    page = open_page(ops_server)
    wait_live(page)
    expect(row(page, failed.pk).locator(".col-status")).to_have_text("✕Failed")
    expect(row(page, done.pk).locator(".col-status")).to_have_text("✓Succeeded")
    row(page, failed.pk).locator(".select-row").check()
    row(page, done.pk).locator(".select-row").check()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.get_by_role("button", name="Retry selected…").click()
    page.get_by_role("button", name="Retry 2 tasks").click()
    expect(page.locator("#bulk-panel .bulk-result")).to_have_text(
        "Retried 1 of 2 tasks. 1 refused: 1 not failed or cancelled (succeeded)."
    )
    expect(row(page, failed.pk).locator(".col-attempts")).to_have_text("2")
    # The selection is cleared once it is done; the rows went on changing meanwhile.
    expect(page.locator("#bulk-count")).to_have_text("No task selected")
    assert page.console_errors == [], page.console_errors


# --- 3. run again with changes -----------------------------------------------------------


def test_run_again_with_changes_links_back(ops_server, open_page, user):
    source = create(
        title="Monthly report",
        kwargs={"steps": 1, "delay": 0, "fail_at": 0},
        description="for finance",
        created_by=user,
    )
    page = open_page(ops_server, f"/tasks/{source.pk}/")
    expect(page.locator("#task-head .badge")).to_have_text("✕Failed")
    page.get_by_role("link", name="Run again with changes").click()
    expect(page.locator("h1")).to_have_text("Run again with changes")
    expect(page.locator("#id_title")).to_have_value("Monthly report")
    expect(page.locator("#id_function")).to_have_value("tasks.examples.pipeline")
    assert '"fail_at": 0' in page.locator("#id_kwargs").input_value()
    expect(page.locator("#id_description")).to_have_value("for finance")
    screenshot(page, "rerun")
    page.locator("#id_kwargs").fill("{not json")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#id_kwargs-error")).to_contain_text("kwargs is not valid JSON")
    assert Task.objects.count() == 1
    page.locator("#id_title").fill("Monthly report, fixed")
    page.locator("#id_kwargs").fill('{"steps": 2, "delay": 0.1}')
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#task-head h1")).to_have_text("Monthly report, fixed")
    expect(page.locator("#task-head .badge")).to_have_text("✓Succeeded")
    rerun = Task.objects.get(title="Monthly report, fixed")
    assert rerun.rerun_of_id == source.pk and rerun.created_by == user
    page.locator("#rerun-of").click()
    expect(page.locator("#task-head h1")).to_have_text("Monthly report")
    assert script_errors(page) == []


# --- 4. questions that fit, answered by someone else -------------------------------------


def test_choices_and_a_second_viewer_sees_answered_by_alice(
    ops_server, open_page, user, staff_user
):
    task = create(
        title="Deploy v2.4",
        kwargs={
            "steps": 1,
            "delay": 0,
            "ask": "Deploy to production?",
            "choices": ["Approve", "Reject"],
            "default": "Approve",
        },
        created_by=user,
    )
    alice = open_page(ops_server, f"/tasks/{task.pk}/")
    root = open_page(ops_server, f"/tasks/{task.pk}/", username="root")
    for page in (alice, root):
        wait_live(page)
        expect(page.locator("#task-prompt .choices button")).to_have_text(["Approve", "Reject"])
    expect(alice.locator("#task-prompt .choices .button-primary")).to_have_text("Approve")
    assert alice.locator("#task-prompt textarea, #task-prompt input[type=text]").count() == 0
    screenshot(alice, "ask-choices")

    alice.get_by_role("button", name="Approve").click()
    # root sees who answered, at once, instead of buttons that would fail.
    expect(root.locator("#task-prompt .answered-name").first).to_have_text("alice")
    expect(root.locator("#task-prompt button")).to_have_count(0)
    expect(root.locator("#task-head .badge")).to_have_text("✓Succeeded")
    expect(root.locator("#task-prompt .answered-by")).to_contain_text("Answered by alice at")
    expect(root.locator("#task-log")).to_contain_text("answer: Approve")
    execution = Execution.objects.get(pk=task.latest_execution_id)
    assert (execution.answer, execution.answered_by, execution.result["answer"]) == (
        "Approve",
        user,
        "Approve",
    )
    assert alice.console_errors == [] and root.console_errors == []


def test_a_multiline_question_with_a_default(ops_server, open_page, user):
    task = create(
        title="Release notes",
        kwargs={"steps": 0, "ask": "Edit the notes", "multiline": True, "default": "- fixes"},
        created_by=user,
    )
    page = open_page(ops_server, f"/tasks/{task.pk}/")
    box = page.locator("#task-prompt textarea#id_answer")
    expect(box).to_have_value("- fixes")
    box.fill("- fixes\n- a faster list")
    page.get_by_role("button", name="Send answer").click()
    expect(page.locator("#task-head .badge")).to_have_text("✓Succeeded")
    assert Execution.objects.get(pk=task.latest_execution_id).answer == "- fixes\n- a faster list"


# --- 5. the inbox, its count, notifications ----------------------------------------------


def test_inbox_answer_in_place_and_the_count_in_two_contexts(
    ops_server, open_page, user, staff_user
):
    inbox = open_page(ops_server, "/inbox/")  # alice
    tasks_page = open_page(ops_server, "/", username="root")
    for page in (inbox, tasks_page):
        wait_live(page)
        expect(page.locator("#inbox-count")).to_have_text("0")
    expect(inbox.locator("#inbox-items")).to_contain_text("Nothing waits for you")

    first = create(
        title="Approve the budget",
        kwargs={"steps": 0, "ask": "Approve 12k?", "choices": ["Approve", "Reject"]},
        created_by=user,
    )
    second = create(
        title="Name the release",
        kwargs={"steps": 0, "ask": "Its name?", "default": "Otter"},
        created_by=user,
    )
    for page in (inbox, tasks_page):
        expect(page.locator("#inbox-count")).to_have_text("2")
    first_id = Task.objects.get(pk=first.pk).latest_execution_id
    second_id = Task.objects.get(pk=second.pk).latest_execution_id
    item = inbox.locator(f"#inbox-{second_id}")
    expect(item.locator("input#answer-" + str(second_id))).to_have_value("Otter")
    screenshot(inbox, "inbox")

    # root answers one from his own inbox; alice's inbox and both counts follow.
    tasks_page.locator("#inbox-link").click()
    tasks_page.locator(f"#inbox-{first_id}").get_by_role("button", name="Reject").click()
    expect(inbox.locator(f"#inbox-{first_id}")).to_have_count(0)  # resumed and finished
    for page in (inbox, tasks_page):
        expect(page.locator("#inbox-count")).to_have_text("1")
    # alice answers the other in place.
    item.locator("input").fill("Platypus")
    item.get_by_role("button", name="Send answer").click()
    for page in (inbox, tasks_page):
        expect(page.locator("#inbox-count")).to_have_text("0")
    expect(inbox.locator("#inbox-items")).to_contain_text("Nothing waits for you")
    assert Execution.objects.get(pk=first_id).answered_by == staff_user
    assert Execution.objects.get(pk=second_id).answer == "Platypus"
    assert inbox.console_errors == [] and tasks_page.console_errors == []


HIDDEN_TAB = """
(() => {
  window.__hidden = false;
  const state = () => (window.__hidden ? "hidden" : "visible");
  Object.defineProperty(document, "visibilityState", { get: state });
  Object.defineProperty(document, "hidden", { get: () => window.__hidden });
  // Record what the page shows (counted on <html>, for expect), then show it as the
  // browser would.
  window.__notifications = [];
  const Real = window.Notification;
  class Recorded extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: options && options.body });
      document.documentElement.dataset.notified = String(window.__notifications.length);
    }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def test_a_notification_when_a_hidden_tabs_task_starts_waiting(ops_server, open_page, user):
    page = open_page(ops_server, "/", permissions=["notifications"])
    page.add_init_script(HIDDEN_TAB)
    page.reload()
    wait_live(page)
    toggle = page.locator("#notify-toggle")
    expect(toggle).to_have_text("Notify me")  # nothing was asked on load
    toggle.click()
    expect(toggle).to_have_text("Notifications on")
    expect(toggle).to_have_attribute("aria-pressed", "true")

    # Visible tab: no notification.
    seen = create(title="Seen", kwargs={"steps": 0, "ask": "Now?"}, created_by=user)
    expect(row(page, seen.pk).locator(".col-status")).to_have_text("?Waiting for input")
    title = f"#{seen.pk} waits for your answer"
    expect(page.locator("#notify")).to_have_attribute("data-title", title)
    assert page.evaluate("window.__notifications") == []

    page.evaluate("window.__hidden = true")
    waiting = create(title="Sign the release", kwargs={"steps": 0, "ask": "Sign?"}, created_by=user)
    expect(page.locator("html")).to_have_attribute("data-notified", "1")
    assert page.evaluate("window.__notifications") == [
        {"title": f"#{waiting.pk} waits for your answer", "body": "Sign the release"}
    ]
    failing = create(title="Flaky", kwargs={"steps": 1, "delay": 0, "fail_at": 0}, created_by=user)
    expect(page.locator("html")).to_have_attribute("data-notified", "2")
    assert page.evaluate("window.__notifications[1].title") == f"#{failing.pk} failed"
    assert page.console_errors == [], page.console_errors


# --- 6. history --------------------------------------------------------------------------


def test_history_in_order_with_who_and_when_live(ops_server, open_page, user):
    task = create(title="Backfill", kwargs={"steps": 40, "delay": 0.5}, created_by=user)
    page = open_page(ops_server, f"/tasks/{task.pk}/events/")
    wait_live(page)
    rows = page.locator("#history-rows tr")
    expect(rows.first.locator(".what")).to_have_text("created “Backfill”")
    expect(rows.first.locator(".who")).to_have_text("alice")
    expect(page.locator("#history-rows")).to_contain_text("step “step 2 of 40” succeeded")

    other = open_page(ops_server, f"/tasks/{task.pk}/")
    other.get_by_role("button", name="Cancel attempt 1").click()
    # The worker's side first, then the page's: a failure says which one did not happen.
    wait_for(
        lambda: Task.objects.filter(pk=task.pk, status=Status.CANCELLED).exists(),
        what="the worker to stop the cancelled task",
    )
    expect(other.locator("#task-head .head-status .badge")).to_have_text("⊘Cancelled")
    cancelled = page.locator("#history-rows tr.ev-execution-status").last
    expect(cancelled.locator(".what")).to_contain_text("running → cancelled")
    expect(cancelled.locator(".who")).to_have_text("alice")
    ids = [int(i) for i in page.locator("#history-rows .event-id").all_inner_texts()]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    stored = list(Event.objects.filter(task_id=task.pk).order_by("id").values_list("id", flat=True))
    expect(page.locator("#history-rows tr")).to_have_count(len(stored))
    last = page.locator("#history-rows tr").last
    resume = last.locator("a.resume").get_attribute("href")
    assert resume == f"/events/?task={task.pk}&last_event_id={stored[-1]}"
    last.locator(".event-id").click()
    assert page.url.endswith(f"#event-{stored[-1]}")
    screenshot(page, "history")
    assert page.console_errors == [], page.console_errors


# --- 7. charts ---------------------------------------------------------------------------


def test_charts_update_live(ops_server, open_page, user, staff_user):
    page = open_page(ops_server, "/workers/", username="root")
    wait_live(page)
    chart = page.locator("#chart-throughput")
    expect(chart).to_have_attribute("data-succeeded", "0")
    for i in range(3):
        create(title=f"Quick {i}", kwargs={"steps": 1, "delay": 0.2}, created_by=user)
    create(title="Broken", kwargs={"steps": 1, "delay": 0, "fail_at": 0}, created_by=user)
    expect(chart).to_have_attribute("data-succeeded", "3")
    expect(chart).to_have_attribute("data-failed", "1")
    expect(chart.locator("rect.bar-succeeded")).to_have_count(1)  # one minute, or two
    bar = page.locator("#chart-durations g[data-function='tasks.examples.pipeline']")
    expect(bar.locator(".value")).to_contain_text("p50")
    expect(bar.locator(".value")).to_contain_text("4 runs")
    assert page.console_errors == [], page.console_errors


# --- 8. the admin's change page ----------------------------------------------------------


def test_admin_change_page_is_live(ops_server, open_page, user, staff_user):
    page = open_page(ops_server, "/", username="root")
    task = create(title="Admin watches", kwargs={"steps": 4, "delay": 1.5}, created_by=user)
    page.goto(f"{ops_server.url}/admin/tasks/task/{task.pk}/change/")
    wait_live(page)
    live = page.locator(".live-admin")
    figures = live.locator("#task-progress .progress-figures")
    expect(live.locator("#task-head .badge")).to_have_text("◔Running")
    shown = figures.inner_text()
    assert "of 4" in shown
    expect(figures).not_to_have_text(shown)  # it moves without a reload
    screenshot(page, "admin-task")
    expect(figures).to_contain_text("100%")
    expect(live.locator("#task-steps .step")).to_have_count(4)
    expect(live.locator("#task-head .badge")).to_have_text("✓Succeeded")
    expect(live.locator("#task-steps .badge")).to_have_text(["✓Succeeded"] * 4)
    assert page.console_errors == [], page.console_errors


# --- 9. the log --------------------------------------------------------------------------


def test_a_reader_who_scrolls_up_keeps_their_place(ops_server, open_page, staff_user):
    # 300 lines at once (the tail is full), then a line every quarter second.
    command = "seq 1 300; while :; do echo tick; sleep 0.25; done"
    task = create(
        title="Chatty",
        function="tasks.examples.shell",
        kwargs={"command": command},
        created_by=staff_user,
    )
    page = open_page(ops_server, f"/tasks/{task.pk}/", username="root")
    lines = page.locator("#task-log .log-line")
    expect(lines).to_have_count(200)  # the tail is full and still moving
    box = page.locator("#log-box")
    follow = page.locator("#log-follow")
    expect(follow).to_be_checked()
    # Scroll up to the middle: following stops.
    box.evaluate("b => { b.scrollTop = b.scrollHeight / 2; b.dispatchEvent(new Event('scroll')); }")
    expect(follow).not_to_be_checked()
    first_visible = """b => {
      const top = b.getBoundingClientRect().top;
      const lines = [...b.querySelectorAll('li[id]')];
      const line = lines.find(l => l.getBoundingClientRect().bottom > top);
      return [line.id, Math.round(line.getBoundingClientRect().top - top)];
    }"""
    line_id, offset = box.evaluate(first_visible)
    for _ in range(3):  # more lines arrive (the newest changes) while the reader's stays put
        expect(lines.last).not_to_have_id(lines.last.get_attribute("id"))
        now_id, now_offset = box.evaluate(first_visible)
        assert now_id == line_id and abs(now_offset - offset) <= 2
    assert box.evaluate("b => b.scrollHeight - b.scrollTop - b.clientHeight") > 8
    # Back at the bottom it follows again.
    box.evaluate("b => { b.scrollTop = b.scrollHeight; b.dispatchEvent(new Event('scroll')); }")
    expect(follow).to_be_checked()
    newest = lines.last.get_attribute("id")
    expect(lines.last).not_to_have_id(newest)
    assert box.evaluate("b => b.scrollHeight - b.scrollTop - b.clientHeight") < 8
    assert page.console_errors == [], page.console_errors
    # Stop the endless command before the next test (it stops at its next line).
    page.get_by_role("button", name="Cancel attempt 1").click()
    wait_for(
        lambda: Task.objects.filter(pk=task.pk, status=Status.CANCELLED).exists(),
        what="the command to stop",
    )


def test_a_log_of_100000_lines_keeps_only_its_tail_in_the_page(ops_server, open_page, user):
    task = create(title="Huge log", kwargs={"steps": 0}, created_by=user)
    execution_id = Task.objects.get(pk=task.pk).latest_execution_id
    Event.objects.bulk_create(
        [
            Event(
                type="execution.log",
                task_id=task.pk,
                execution_id=execution_id,
                data={"level": "info", "message": f"line {n}"},
            )
            for n in range(1, 100_001)
        ],
        batch_size=5000,
    )
    page = open_page(ops_server, f"/tasks/{task.pk}/")
    lines = page.locator("#task-log .log-line")
    expect(lines).to_have_count(200)
    expect(lines.last).to_contain_text("line 100000")
    expect(page.locator("#task-log .log-note")).to_contain_text("Showing the last 200 lines")
    assert page.evaluate("document.querySelectorAll('#task-log li').length") == 201
    response = page.request.get(f"{ops_server.url}/tasks/{task.pk}/log.txt")
    body = response.text()
    assert response.status == 200
    assert body.count("\n") >= 100_000 and "INFO line 100000\n" in body


# --- no polling --------------------------------------------------------------------------


def test_the_new_pages_make_no_request_but_their_one_stream_while_idle(
    ops_server, open_page, staff_user
):
    task = create(title="Idle", kwargs={"steps": 0}, created_by=staff_user)
    logged_in = open_page(ops_server, username="root")
    for path in ["/workers/", "/inbox/", f"/tasks/{task.pk}/events/", f"/tasks/{task.pk}/rerun/"]:
        page = logged_in.context.new_page()  # its requests only
        requests: list[str] = []
        page.on("request", lambda request, requests=requests: requests.append(request.url))
        page.goto(ops_server.url + path)
        wait_live(page)
        page.wait_for_load_state("networkidle")
        settled = len(requests)
        # Idle on purpose: this is what is being measured.
        page.wait_for_timeout(4_000)
        assert requests[settled:] == [], path
        streams = [url for url in requests if "stream/" in url]
        assert len(streams) == 1, (path, requests)
        page.close()
