"""Helpers of the operations pages' browser tests."""

from __future__ import annotations

from pathlib import Path

from tests.browser.conftest import SCREENSHOTS


def screenshot(page, name: str) -> Path:
    """A full-page screenshot that leaves the caret alone: hiding it injects an inline style,
    which the CSP blocks (a console error in the page under test)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path


def script_errors(page) -> list[str]:
    """The page's console errors but the browser's own note of a 422 (a form with errors,
    which is the answer asked for)."""
    return [e for e in page.console_errors if "status of 422" not in e]
