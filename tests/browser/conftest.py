"""Chromium (Debian's, never a downloaded one) driven by Playwright against a real
`manage.py serve` (daphne plus the in-process worker) on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.servers import ROOT, ServerProcess, process_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Short waits for work the server does on its own: a task created by another process
# reaches an in-memory-layer server through its safety tick.
SERVER_ENV = {
    "EVENTS_SAFETY_TICK_SECONDS": "0.3",
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_CANCEL_GRACE_SECONDS": "3",
}
LIVE = 30_000  # ms: the most a live change may take to show (a bound, not a pace)


def _expect_timeout() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=LIVE)


_expect_timeout()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.access(CHROMIUM, os.X_OK):
        return
    skip = pytest.mark.skip(
        reason=f"SKIPPED LOUDLY: no Chromium at {CHROMIUM} (apt-get install chromium)"
    )
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread, which Django's ORM takes
    # for an async context; the tests' own database calls are plain synchronous ones.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def serve_env(**extra: str) -> dict[str, str]:
    return process_env(**{**SERVER_ENV, **extra})


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    """One `serve` per module on the test database (tests commit with transaction=True)."""
    process = ServerProcess("serve", env=serve_env())
    process.start()
    yield process
    process.stop()
    # What the server said, for a failure's post-mortem.
    (Path(tempfile.gettempdir()) / "taskstream-browser-server.log").write_text(process.output)


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base_url}/")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_failed = report.failed


@pytest.fixture
def open_page(browser, user, request):
    """`open_page(server, path)`: a fresh context logged in as alice, at `path`."""
    contexts = []
    servers: list[ServerProcess] = []

    def open_(server: ServerProcess, path: str = "/", *, username: str = "alice", **options):
        if server not in servers:
            servers.append(server)
        context = browser.new_context(viewport={"width": 1280, "height": 860}, **options)
        context.set_default_timeout(LIVE)
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.console_errors = []
        page.on(
            "console",
            lambda message: message.type == "error" and page.console_errors.append(message.text),
        )
        log_in(page, server.url, username)
        if path != "/":
            page.goto(server.url + path)
        return page

    yield open_
    for number, context in enumerate(contexts):
        if getattr(request.node, "browser_failed", False):
            for page in context.pages:  # what the page showed when the test failed
                screenshot(page, f"failed-{request.node.name}-{number}")
        context.close()
    if getattr(request.node, "browser_failed", False):
        for server in servers:  # what the server said, in the failure's report (CI keeps no files)
            print(f"--- the last of {server.kind}'s output ---\n{server.output[-6000:]}")


def wait_live(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def create_task_cli(title: str, kwargs: str, **env: str) -> int:
    """`manage.py create_task` in its own process, as a person would; the new id."""
    done = subprocess.run(
        [sys.executable, "manage.py", "create_task", title, "--kwargs", kwargs],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def create(**kwargs):
    """task_create from a thread of its own: this thread runs Playwright's event loop, from
    which publishing on commit (async_to_sync) cannot run."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from tasks.services import task_create

    def run():
        try:
            return task_create(**kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
