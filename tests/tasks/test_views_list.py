"""The task list at /: filters in the URL, bounded pagination, bad parameters, login."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Task
from tasks.selectors import TaskFilters, count_bounded, task_page
from tests.factories import make_execution, make_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def rows(response) -> list[str]:
    """Titles of the rows on the page, in order."""
    return [task.title for task in response.context["page"].rows]


def test_anonymous_is_sent_to_login(client):
    response = client.get("/?status=failed")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


def test_anonymous_list_stream_is_401_not_a_redirect(client):
    response = client.get("/stream/")
    assert response.status_code == 401


def test_list_newest_first_with_counts(logged_in):
    make_task("first")
    make_execution("failed", title="second")
    make_task("third")
    response = logged_in.get("/")
    assert response.status_code == 200
    assert rows(response) == ["third", "second", "first"]
    counts = {c.status: c.count for c in response.context["counts"]}
    assert counts["pending"] == 2 and counts["failed"] == 1 and counts["running"] == 0
    html = response.content.decode()
    assert 'sse-connect="/stream/?last_event_id=' in html
    assert 'hx-swap="none"' in html


def test_filters_status_text_function_and_dates(logged_in):
    make_task("alpha report")
    make_execution("failed", title="beta report")
    make_task("gamma")
    old = make_task("alpha old")
    Task.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    assert rows(logged_in.get("/?status=failed")) == ["beta report"]
    assert rows(logged_in.get("/?q=REPORT")) == ["beta report", "alpha report"]
    assert rows(logged_in.get("/?q=alpha&status=pending")) == ["alpha report", "alpha old"]
    assert rows(logged_in.get("/?function=tasks.examples.pipeline&q=gamma")) == ["gamma"]
    assert rows(logged_in.get("/?function=tasks.examples.shell")) == []
    today = timezone.localdate()
    since = (today - timedelta(days=1)).isoformat()
    assert "alpha old" not in rows(logged_in.get(f"/?created_from={since}"))
    until = (today - timedelta(days=5)).isoformat()
    assert rows(logged_in.get(f"/?created_to={until}")) == ["alpha old"]


def test_filters_are_kept_in_links_and_stream_url(logged_in):
    make_execution("failed", title="x")
    html = logged_in.get("/?status=failed&q=x").content.decode()
    assert "/stream/?status=failed&amp;q=x&amp;last_event_id=" in html
    # The status counts link to the same filters with another status.
    assert 'href="?status=running&amp;q=x"' in html


def test_counts_ignore_the_status_filter(logged_in):
    make_task("a")
    make_execution("failed", title="b")
    response = logged_in.get("/?status=failed")
    counts = {c.status: c.count for c in response.context["counts"]}
    assert counts == {
        "pending": 1,
        "running": 0,
        "waiting_for_input": 0,
        "succeeded": 0,
        "failed": 1,
        "cancelled": 0,
    }


def test_pagination_pages_and_out_of_range(logged_in):
    for i in range(30):
        make_task(f"t{i:02d}")
    first = logged_in.get("/")
    assert len(rows(first)) == 25 and rows(first)[0] == "t29"
    assert first.context["page"].num_pages == 2
    second = logged_in.get("/?page=2")
    assert rows(second) == [f"t{i:02d}" for i in range(4, -1, -1)]
    assert 'rel="prev" href="?"' in second.content.decode()
    beyond = logged_in.get("/?page=99")
    assert beyond.status_code == 200
    assert rows(beyond) == rows(second)
    assert "There is no page 99; showing page 2." in beyond.content.decode()


@pytest.mark.parametrize(
    "query, ignored",
    [
        ("status=bogus", "status"),
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=-3", "page"),
        ("page=99999999999999999999", "page"),
        ("created_from=yesterday", "created_from"),
        ("created_to=2026-13-40", "created_to"),
        ("q=" + "x" * 500, "q"),
        ("created_from=2026-05-02&created_to=2026-05-01", "created_to"),
    ],
)
def test_bad_parameters_are_ignored_with_a_message(logged_in, query, ignored):
    make_task("still listed")
    response = logged_in.get(f"/?{query}")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Ignored {ignored}=" in html
    assert rows(response) == ["still listed"]


def test_titles_are_escaped_in_the_list(logged_in):
    make_task(XSS)
    html = logged_in.get("/").content.decode()
    assert XSS not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_bounded_count_stops_at_the_cap():
    for i in range(5):
        make_task(f"t{i}")
    assert count_bounded(Task.objects.all(), cap=3) == (3, True)
    assert count_bounded(Task.objects.all(), cap=5) == (5, False)


def test_page_of_an_empty_table():
    page = task_page(TaskFilters(), visible=Task.objects.all())
    assert page.rows == [] and page.number == 1 and page.num_pages == 1 and page.count == 0


def test_list_row_shows_progress_and_current_step(logged_in):
    from tasks.models import Step

    execution = make_execution("running", title="busy")
    execution.progress_done, execution.progress_total = 1, 4
    execution.save(update_fields=["progress_done", "progress_total"])
    Step.objects.create(execution=execution, index=0, name="fetch", status="succeeded")
    Step.objects.create(execution=execution, index=1, name="transform", status="running")
    Step.objects.create(execution=execution, index=2, name="load")
    html = logged_in.get("/").content.decode()
    assert '<progress max="4" value="1"' in html
    assert "transform" in html and "25%" in html
