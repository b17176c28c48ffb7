"""Every hostile input the issue lists answers 4xx or a form error with one line and
changes nothing (each was a 500 before): dates past the calendar, ids of thousands of
digits or past 64 bits, NaN/Infinity and 100,000 brackets in kwargs, a lone surrogate,
and a filter value holding "&" that shared another filter's render."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution, Task
from tasks.web.forms import task_filters_parse
from tasks.web.renderers import TaskListRenderer, task_list_renderer
from tests.conftest import PASSWORD
from tests.factories import make_execution, make_task
from tests.servers import ROOT, login_cookies, process_env

PIPELINE = "tasks.examples.pipeline"
HTMX = {"HTTP_HX_REQUEST": "true"}
BAD_KWARGS = [
    ('{"delay": NaN}', "must not contain NaN"),
    ('{"delay": Infinity}', "must not contain Infinity"),
    ('{"delay": -Infinity}', "must not contain -Infinity"),
    ("[" * 100_000, "kwargs is 100000 bytes long; the most is 65536"),
    ("[" * 5_000, "kwargs is nested too deeply; the most is 32"),  # within the size bound
    ('{"a": ' * 40 + "1" + "}" * 40, "kwargs is nested too deeply; the most is 32"),
    ('{"ask": "\\ud800"}', "kwargs strings must not contain lone surrogates"),
    ('{"ask": "\\u0000"}', "kwargs strings must not contain NUL characters"),
    ('{"\\udfff": 1}', "kwargs keys must not contain lone surrogates"),
]


def nothing_written() -> tuple[int, int, int]:
    return Task.objects.count(), Execution.objects.count(), Event.objects.count()


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.postgres
class TestPagesAndIds:
    def test_a_date_past_the_calendar_is_ignored_with_a_message(self, logged_in) -> None:
        make_task("visible")
        for query in (
            {"created_to": "9999-12-31"},
            {"created_from": "0001-01-01"},
            {"created_from": "9999-12-31", "created_to": "9999-12-31"},
        ):
            response = logged_in.get("/", query)
            assert response.status_code == 200
            html = response.content.decode()
            assert "must be a date between 0001-01-02 and 9999-12-30" in html
            assert "visible" in html  # the list, without that filter

    def test_filters_parse_keeps_nothing_unusable(self) -> None:
        filters, problems = task_filters_parse({"created_to": "9999-12-31", "page": "9" * 30})
        assert filters.created_to is None and filters.page == 1
        assert len(problems) == 2 and all("\n" not in p for p in problems)

    @pytest.mark.parametrize(
        "url",
        [
            "/tasks/99999999999999999999/",
            "/tasks/99999999999999999999/log.txt",
            "/tasks/1/attempts/99999999999999999999/log.txt",
            "/tasks/99999999999999999999/attempts/1/log.txt",
            "/tasks/99999999999999999999/stream/",
        ],
    )
    def test_ids_past_64_bits_are_404(self, logged_in, url: str) -> None:
        make_task("t")
        assert logged_in.get(url).status_code == 404

    @pytest.mark.parametrize(
        "url",
        [
            "/tasks/99999999999999999999/cancel/",
            "/tasks/99999999999999999999/retry/",
            "/tasks/99999999999999999999/attempts/1/answer/",
            "/tasks/{pk}/attempts/99999999999999999999/answer/",
        ],
    )
    def test_actions_on_ids_past_64_bits_are_404_and_change_nothing(
        self, logged_in, url: str
    ) -> None:
        task = make_execution("waiting_for_input").task
        before = nothing_written()
        assert logged_in.post(url.format(pk=task.pk), {"answer": "x"}).status_code == 404
        assert nothing_written() == before

    def test_a_very_long_url_is_a_one_line_414(self, client, user) -> None:
        """Found by the property test: a login redirect whose "next" passed 16,384
        characters was a 400 logged with a traceback (DisallowedRedirect)."""
        for url in ("/?q=" + "x" * 20_000, "/admin/tasks/task/?q=" + "y" * 9_000):
            response = client.get(url)
            assert response.status_code == 414
            assert response.content.decode().count("\n") == 1
        client.force_login(user)  # logged in, not staff: the admin's login redirect
        assert client.get("/admin/tasks/task/?q=" + "z" * 9_000).status_code == 414
        assert client.get("/admin/tasks/task/?q=" + "z" * 8_000).status_code == 302

    def test_events_with_thousands_of_digits_is_a_one_line_400(self, logged_in) -> None:
        for name in ("task", "execution"):
            response = logged_in.get("/events/", {name: "9" * 5000})
            assert response.status_code == 400
            text = response.content.decode()
            assert (
                text.startswith(f"{name} must be a positive integer id") and text.count("\n") == 1
            )
        assert logged_in.get("/events/", {"task": "9" * 19}).status_code == 400

    def test_admin_searches_of_huge_ids_do_not_overflow(self, client, staff_user) -> None:
        client.force_login(staff_user)
        make_task("t")
        for page in ("/admin/tasks/execution/", "/admin/events/event/", "/admin/tasks/task/"):
            for q in ("9" * 20, "9" * 5000, "-1", "1e400"):
                assert client.get(page, {"q": q}).status_code == 200, (page, q)


@pytest.mark.django_db
@pytest.mark.postgres
class TestKwargs:
    @pytest.mark.parametrize(("raw", "message"), BAD_KWARGS)
    def test_the_create_form_refuses_with_a_form_error(self, logged_in, raw, message) -> None:
        before = nothing_written()
        response = logged_in.post(
            "/tasks/new/", {"function": PIPELINE, "title": "t", "kwargs": raw}, **HTMX
        )
        assert response.status_code == 422
        assert message in response.content.decode()
        assert nothing_written() == before

    @pytest.mark.parametrize(("raw", "message"), BAD_KWARGS)
    def test_create_task_refuses_with_one_line(self, raw, message) -> None:
        before = nothing_written()
        with pytest.raises(CommandError) as refused:
            call_command("create_task", "t", "--kwargs", raw)
        assert message in str(refused.value) and "\n" not in str(refused.value)
        assert nothing_written() == before

    @pytest.mark.parametrize(
        "kwargs",
        [{"delay": float("nan")}, {"delay": float("inf")}, {"ask": "\ud800"}, {"a": {1: 2}}],
    )
    def test_the_service_refuses_python_values_json_cannot_hold(self, kwargs) -> None:
        from tasks.services import task_create
        from tasks.states import TaskInputError

        with pytest.raises(TaskInputError):
            task_create(title="t", kwargs=kwargs)
        assert nothing_written() == (0, 0, 0)

    def test_titles_descriptions_and_answers_with_lone_surrogates_or_nul_are_refused(
        self, logged_in
    ) -> None:
        from tasks.services import execution_answer, task_create
        from tasks.states import TaskInputError

        for bad in ({"title": "a\ud800"}, {"title": "t", "description": "\x00"}):
            with pytest.raises(TaskInputError, match="must not contain"):
                task_create(**bad)
        waiting = make_execution("waiting_for_input")
        with pytest.raises(TaskInputError, match="must not contain lone surrogates"):
            execution_answer(execution=waiting, answer="yes\udc80")
        waiting.refresh_from_db()
        assert waiting.answer == ""

    def test_create_task_with_undecodable_arguments_says_one_line(self) -> None:
        """Bytes that are not UTF-8 on the command line reach Python as lone surrogates."""
        for argv in ([b"t\xff"], [b"t", b"--description", b"\xff"], [b"t", b"--group", b"\xfe"]):
            done = subprocess.run(
                [sys.executable, "manage.py", "create_task", *argv],
                cwd=ROOT,
                env=process_env(DATABASE_URL="sqlite:///:memory:"),
                capture_output=True,
                timeout=60,
            )
            assert done.returncode != 0
            err = done.stderr.decode(errors="replace").strip()
            assert "Traceback" not in err and len(err.splitlines()) == 1, err


@pytest.mark.django_db  # not on PostgreSQL: it stores no lone surrogate at all, even in JSON
def test_a_lone_surrogate_already_stored_does_not_break_any_page(logged_in) -> None:
    """Stored before the checks existed (SQLite's JSON columns keep it as an escape; text
    columns cannot hold one): its pages still serve, the character shown as U+FFFD."""
    execution = make_execution("succeeded", title="ok")
    Task.objects.filter(pk=execution.task_id).update(kwargs={"ask": "bad \ud800 kwargs"})
    Execution.objects.filter(pk=execution.pk).update(result={"r": "\udfff"})
    Event.objects.create(
        type="execution.log",
        task_id=execution.task_id,
        execution_id=execution.pk,
        data={"level": "info", "message": "line \ud800"},
    )
    page = logged_in.get(f"/tasks/{execution.task_id}/")
    assert page.status_code == 200
    assert "bad \ufffd kwargs" in page.content.decode()
    assert logged_in.get("/").status_code == 200
    response = logged_in.get(f"/tasks/{execution.task_id}/log.txt")
    assert response.status_code == 200
    from tests.access.test_matrix import body

    assert "INFO line \ufffd" in body(response)
    assert logged_in.get(f"/admin/tasks/task/{execution.task_id}/change/").status_code in (302, 200)


@pytest.mark.django_db
def test_a_filter_value_holding_an_ampersand_has_its_own_render() -> None:
    tricky, _ = task_filters_parse({"function": "a&status=failed"})
    plain, _ = task_filters_parse({"function": "a", "status": "failed"})
    assert tricky.function == "a&status=failed" and plain.status == "failed"
    assert TaskListRenderer(tricky).name != TaskListRenderer(plain).name
    assert task_list_renderer(tricky).filters == tricky
    assert task_list_renderer(plain).filters == plain


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_over_a_socket_bad_streams_are_one_line_and_the_ampersand_filter_shares_nothing(
    start_server, user, open_streams
) -> None:
    failed = make_execution("failed", title="failed one", function=PIPELINE)
    server = start_server("daphne", env=process_env(EVENTS_SAFETY_TICK_SECONDS="0.2"))
    cookies = login_cookies(server.url, "alice", PASSWORD)

    calendar = open_streams(
        server.url, "/stream/", cookies=cookies, params={"created_to": "9999-12-31"}
    )
    assert calendar.wait_status() == 200
    calendar.wait(lambda s: any(f.event == "fragment" for f in s.frames))

    digits = open_streams(server.url, cookies=cookies, params={"task": "9" * 5000})
    assert digits.wait_status() == 400
    digits.wait_done()
    assert digits.body.decode().startswith("task must be a positive integer id")
    assert digits.body.count(b"\n") == 1

    # Same server, same moment: a filter whose value holds "&" and the filters it spells.
    tricky = open_streams(
        server.url, "/stream/", cookies=cookies, params={"function": f"{PIPELINE}&status=failed"}
    )
    plain = open_streams(
        server.url, "/stream/", cookies=cookies, params={"function": PIPELINE, "status": "failed"}
    )
    for stream in (tricky, plain):
        stream.wait(lambda s: any(f.event == "fragment" for f in s.frames))
    make_task("a new pending one")  # a page-wide event: both lists render again
    row = f'id="task-{failed.task_id}"'
    plain.wait(lambda s: sum(f.event == "fragment" for f in s.frames) >= 2)
    tricky.wait(lambda s: sum(f.event == "fragment" for f in s.frames) >= 2)
    assert row in [f.data for f in plain.frames if f.event == "fragment"][-1]
    assert row not in [f.data for f in tricky.frames if f.event == "fragment"][-1]
