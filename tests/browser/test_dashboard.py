"""The live dashboard in a real browser against a real server and worker.

Every wait is Playwright's (expect(...) with a timeout); the one deliberate 10-second
idle period is the point of the no-polling test.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tasks.models import Execution, Task
from tests.browser.conftest import (
    LIVE,
    create,
    create_task_cli,
    screenshot,
    serve_env,
    wait_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

XSS = "<img src=x onerror=alert(1)>"


def row(page, task_id: int):
    return page.locator(f"#task-{task_id}")


def test_cli_task_appears_and_succeeds_on_an_open_list(server, open_page):
    page = open_page(server)
    wait_live(page)
    page.evaluate("window.__notReloaded = true")

    task_id = create_task_cli("From the command line", '{"steps": 3, "delay": 0.2}')

    expect(row(page, task_id)).to_be_visible()
    expect(row(page, task_id).locator(".col-title a")).to_have_text("From the command line")
    expect(row(page, task_id).locator(".col-status")).to_have_text("✓Succeeded", timeout=LIVE)
    expect(row(page, task_id).locator(".col-progress .percent")).to_have_text("100%")
    expect(row(page, task_id).locator(".col-step")).to_have_text("step 3 of 3")
    expect(page.locator('.count-n[data-status="succeeded"]')).to_have_text("1")
    expect(page.locator('.count-n[data-status="all"]')).to_have_text("1")
    assert page.evaluate("window.__notReloaded") is True  # no reload happened
    assert page.console_errors == []


def test_task_page_steps_and_progress_move_live(server, open_page, user):
    page = open_page(server)  # logged in first, so the page opens as the task starts
    task = create(title="Three slow steps", kwargs={"steps": 3, "delay": 1.2}, created_by=user)
    page.goto(f"{server.url}/tasks/{task.pk}/")
    wait_live(page)
    figures = page.locator("#task-progress .progress-figures")
    # Each state lasts a second: the page must show every one of them as it happens.
    expect(figures).to_contain_text("1 of 3")
    expect(page.locator("#task-steps .step")).to_have_count(2)
    expect(page.locator("#task-head .badge")).to_have_text("◔Running")
    screenshot(page, "task-running")
    expect(figures).to_contain_text("2 of 3")
    expect(figures).to_contain_text("100%")
    expect(page.locator("#task-head .badge")).to_have_text("✓Succeeded")
    steps = page.locator("#task-steps .step")
    expect(steps).to_have_count(3)
    expect(steps.locator(".badge")).to_have_text(["✓Succeeded"] * 3)
    expect(steps.first.locator(".step-duration")).to_contain_text("s")
    expect(page.locator("#task-log .log-line")).to_have_count(6)
    expect(page.locator("#task-log")).to_contain_text("step 3 of 3: done")
    assert page.console_errors == []


def test_answer_a_waiting_execution_from_the_page(server, open_page, user):
    task = create(
        title="Needs a person",
        kwargs={"steps": 1, "delay": 0.1, "ask": "Deploy to production?"},
        created_by=user,
    )
    page = open_page(server, f"/tasks/{task.pk}/")
    prompt = page.locator("#task-prompt")
    expect(prompt).to_contain_text("Deploy to production?")
    page.locator("#id_answer").fill("   ")
    page.get_by_role("button", name="Send answer").click()
    expect(page.locator("#id_answer-error")).to_have_text("the answer must not be empty")
    page.locator("#id_answer").fill("yes, go")
    page.get_by_role("button", name="Send answer").click()
    expect(page.locator("#task-head .badge")).to_have_text("✓Succeeded")
    expect(page.locator("#task-log")).to_contain_text("answer: yes, go")
    assert Execution.objects.get(pk=task.latest_execution_id).answer == "yes, go"


def test_cancel_and_retry_from_the_page(server, open_page, user):
    task = create(title="Long job", kwargs={"steps": 20, "delay": 0.5}, created_by=user)
    page = open_page(server, f"/tasks/{task.pk}/")
    head = page.locator("#task-head")
    expect(head.locator(".head-status .badge")).to_have_text("◔Running")
    page.get_by_role("button", name="Cancel attempt 1").click()
    expect(head.locator(".head-status .badge")).to_have_text("⊘Cancelled")
    expect(page.locator("#task-progress")).to_contain_text("cancelled")

    page.get_by_role("button", name="Retry").click()
    attempts = page.locator("#task-executions tbody tr")
    expect(attempts.first.locator("th")).to_have_text("2")
    expect(page.locator("#messages")).to_contain_text("a new attempt is queued")
    # Pending or already running: either may be cancelled, by the same rules.
    page.get_by_role("button", name="Cancel attempt 2").click()
    expect(head.locator(".head-status .badge")).to_have_text("⊘Cancelled")
    statuses = list(task.executions.order_by("number").values_list("status", flat=True))
    assert statuses == ["cancelled", "cancelled"]
    assert page.console_errors == []


def test_create_form_errors_then_created_task_appears_live(server, open_page):
    page = open_page(server)
    wait_live(page)
    page.locator("#create-panel summary").click()
    form = page.locator("#create-form")
    form.locator("#id_title").fill("")
    form.locator("#id_kwargs").fill("{not json")
    form.get_by_role("button", name="Create task").click()
    expect(page.locator("#id_title-error")).to_have_text("title must not be empty")
    expect(page.locator("#id_kwargs-error")).to_contain_text("kwargs is not valid JSON")
    page.locator("#id_kwargs").fill('{"steps": 2, "colour": "red"}')
    page.locator("#id_title").fill("Made in the browser")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#id_kwargs-error")).to_contain_text("arguments do not fit")
    expect(page.locator("#id_title-error")).to_have_count(0)
    assert Task.objects.count() == 0

    page.locator("#id_kwargs").fill('{"steps": 2, "delay": 0.1}')
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#create-form")).to_contain_text("Created task #")
    task = Task.objects.get()
    expect(row(page, task.pk).locator(".col-title a")).to_have_text("Made in the browser")
    expect(row(page, task.pk).locator(".col-status")).to_have_text("✓Succeeded")


def test_user_strings_are_shown_as_text_everywhere(server, open_page):
    page = open_page(server)
    wait_live(page)
    page.locator("#create-panel summary").click()
    page.locator("#id_title").fill(XSS)
    page.locator("#id_kwargs").fill('{"steps": 1, "delay": 0.1, "ask": "<b>bold?</b>"}')
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#create-form")).to_contain_text("Created task #")
    task = Task.objects.get()
    # The row arrived through the stream (an SSE fragment): its title is text.
    link = row(page, task.pk).locator(".col-title a")
    expect(link).to_have_text(XSS)
    expect(page.locator("#task-rows img")).to_have_count(0)
    link.click()
    expect(page.locator("#task-head h1")).to_have_text(XSS)
    expect(page.locator("#task-prompt .prompt-text")).to_have_text("<b>bold?</b>")
    expect(page.locator("#task-prompt b")).to_have_count(0)
    expect(page.locator("main img")).to_have_count(0)
    assert page.dialogs == []


def test_no_polling_while_idle(server, open_page):
    logged_in = open_page(server)
    page = logged_in.context.new_page()  # its requests only, none of the login page's
    logged_in.close()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url + "/")
    wait_live(page)
    page.wait_for_load_state("networkidle")
    settled = len(requests)
    # Idle for ten seconds on purpose: this is what is being measured.
    page.wait_for_timeout(10_000)
    assert requests[settled:] == []
    streams = [url for url in requests if "/stream/" in url]
    assert len(streams) == 1, requests


def test_reconnects_after_a_restart_and_shows_what_changed(start_server, open_page, user):
    own = start_server("serve", env=serve_env())
    before = create(title="Before the restart", kwargs={"steps": 0}, created_by=user)
    page = open_page(own)
    wait_live(page)
    expect(row(page, before.pk).locator(".col-status")).to_have_text("✓Succeeded")

    own.stop()
    expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")
    during = create(title="Made while it was down", kwargs={"steps": 0}, created_by=user)
    own.start()

    wait_live(page)
    expect(row(page, during.pk).locator(".col-title a")).to_have_text("Made while it was down")
    expect(row(page, during.pk).locator(".col-status")).to_have_text("✓Succeeded")
    expect(page.locator('.count-n[data-status="succeeded"]')).to_have_text("2")


def test_screenshots_of_the_list_and_a_failed_task(server, open_page, user):
    for title, kwargs in [
        ("Nightly report", {"steps": 3, "delay": 0.1}),
        ("Import customers.csv", {"steps": 4, "delay": 0.1, "fail_at": 2}),
        ("Publish release notes", {"steps": 2, "delay": 0.1, "ask": "Publish v2.4 now?"}),
        ("Rebuild search index", {"steps": 40, "delay": 1.0}),
    ]:
        create(title=title, kwargs=kwargs, created_by=user)
    page = open_page(server, color_scheme="light")
    wait_live(page)
    failed = Task.objects.get(title="Import customers.csv")
    expect(row(page, failed.pk).locator(".col-status")).to_have_text("✕Failed")
    waiting = Task.objects.get(title="Publish release notes")
    expect(row(page, waiting.pk).locator(".col-status")).to_have_text("?Waiting for input")
    screenshot(page, "task-list")
    page.goto(f"{server.url}/tasks/{failed.pk}/")
    expect(page.locator("#task-progress .error-box")).to_contain_text("step 3 of 4 failed")
    screenshot(page, "task-failed")
    page.emulate_media(color_scheme="dark")
    page.goto(server.url + "/")
    wait_live(page)
    screenshot(page, "task-list-dark")
    running = Task.objects.get(title="Rebuild search index")
    page.goto(f"{server.url}/tasks/{running.pk}/")
    page.get_by_role("button", name="Cancel attempt 1").click()
    expect(page.locator("#task-head .head-status .badge")).to_have_text("⊘Cancelled")


def test_keyboard_reaches_everything_with_a_visible_focus(server, open_page):
    page = open_page(server)
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")  # skip to the content
    page.locator("#create-panel summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#id_function")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#id_function")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    # Every control of the create form and the filters has a label.
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('main input, main select, main textarea')]
             .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length))
             .map(e => e.name)"""
    )
    assert unlabelled == []
