"""The pages for programs in Chromium: /tokens/ (made, shown once, used, revoked) and the
API docs (Swagger UI from our own static files, under our CSP, no other host)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tokens_page_makes_shows_once_and_revokes(server, open_page):
    page = open_page(server, "/tokens/")
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.fill("#id_name", "nightly runner")
    page.click("#token-form button[type=submit]")
    secret = page.locator("#new-token").inner_text().strip()
    assert re.fullmatch(r"tsk_[A-Za-z0-9_-]{43}", secret)
    row = page.locator("table.tokens tbody tr").first
    expect(row).to_contain_text("nightly runner")
    expect(row).to_contain_text(secret[:12] + "…")
    expect(row.locator(".last-used")).to_have_text("never")
    screenshot(page, "api-tokens")

    # Used by a program: the list shows when.
    response = httpx.get(
        f"{server.url}/api/tasks/", headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert response.status_code == 200
    page.goto(f"{server.url}/tokens/")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once, never again
    assert secret not in page.content()
    expect(row.locator(".last-used time")).to_have_count(1)

    # Revoked: the next request with it is refused.
    page.click("table.tokens tbody tr >> text=Revoke")
    expect(page.locator(".message-success")).to_contain_text("Revoked “nightly runner”")
    expect(page.locator("table.tokens tbody tr").first).to_contain_text("revoked")
    response = httpx.get(
        f"{server.url}/api/tasks/", headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or revoked API token"}
    assert page.console_errors == []


def test_api_docs_render_from_our_own_static_files_under_the_csp(server, open_page):
    page = open_page(server)
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.goto(f"{server.url}/api/docs")
    expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/executions/{execution_id}/report/")
    screenshot(page, "api-docs")

    # "Try it out" with the session: the page sends the CSRF token, under the same CSP.
    create = page.locator(".opblock-post", has_text="Create a task")
    create.locator(".opblock-summary").click()
    create.get_by_role("button", name="Try it out").click()
    create.locator("textarea.body-param__text").fill('{"title": "from the docs page"}')
    create.get_by_role("button", name="Execute").click()
    expect(create.locator(".live-responses-table tbody .response-col_status")).to_have_text("201")
    expect(create.locator(".live-responses-table")).to_contain_text('"created_by": "alice"')
    assert hosts == {urlsplit(server.url).netloc}, hosts
    violations = [e for e in page.console_errors if "Content Security Policy" in e]
    assert violations == [], violations


def test_an_external_execution_on_the_same_dashboard_answered_there(server, open_page, user):
    """A runner (here the test, over HTTP) reports; the task page moves live; the person
    answers on the page; the runner is told by the execution.answered event."""
    from tasks.api.tokens import token_create
    from tests.browser.conftest import wait_live

    bearer = {"Authorization": f"Bearer {token_create(user=user, name='runner').secret}"}
    runner = httpx.Client(base_url=server.url, headers=bearer, timeout=30)
    created = runner.post("/api/tasks/", json={"title": "Nightly import", "function": "external"})
    task_id, execution_id = created.json()["id"], created.json()["latest_execution"]["id"]

    def report(body: dict) -> dict:
        response = runner.post(f"/api/executions/{execution_id}/report/", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    page = open_page(server, f"/tasks/{task_id}/")
    wait_live(page)
    report({"status": "running"})
    report({"step": "fetch", "status": "started"})
    report({"log": [{"message": "fetched 120 rows"}]})
    report({"step": "fetch", "status": "completed"})
    report({"step": "load", "status": "started"})
    report({"progress": {"done": 2, "total": 3, "message": "loading"}})
    expect(page.locator("#task-head .badge")).to_have_text("◔Running")
    expect(page.locator("#task-steps .step")).to_have_count(2)
    expect(page.locator("#task-progress")).to_contain_text("2 of 3")
    expect(page.locator("#task-log")).to_contain_text("fetched 120 rows")
    asked = report({"ask": "Replace yesterday's rows?"})
    expect(page.locator("#task-prompt")).to_contain_text("Replace yesterday's rows?")
    screenshot(page, "external-task-waiting")

    page.locator("#id_answer").fill("yes")
    page.get_by_role("button", name="Send answer").click()
    expect(page.locator("#task-prompt")).to_contain_text("Answer received")
    events = runner.get(
        "/api/events/",
        params={"execution": execution_id, "after": asked["last_event_id"]},
    ).json()["events"]
    answered = [e for e in events if e["type"] == "execution.answered"]
    assert [e["data"] for e in answered] == [{"answer": "yes", "by": "alice"}]
    report({"status": "running"})
    report({"step": "load", "status": "completed"})
    report({"status": "succeeded", "result": {"rows": 120}})
    expect(page.locator("#task-head .badge")).to_have_text("✓Succeeded")
    screenshot(page, "external-task-succeeded")
    assert page.console_errors == []
