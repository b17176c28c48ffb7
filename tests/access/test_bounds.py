"""Bounds, each a setting with a one-line refusal; the worker runs only TASK_FUNCTIONS;
log downloads stream a page at a time; open streams per user are counted across
processes (Redis), and a crashed process's slots free themselves."""

from __future__ import annotations

import signal

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution, Task
from tasks.services import execution_answer, execution_log, task_create
from tasks.states import Status, TaskInputError
from tests.factories import make_execution, make_task
from tests.tasks.engine import run_runnable, wait_for
from tests.tasks.test_create_task_command import _manage


@pytest.mark.django_db
@pytest.mark.postgres
class TestInputBounds:
    @pytest.mark.parametrize(
        ("setting", "value", "create", "message"),
        [
            (
                "TASK_TITLE_MAX_LENGTH",
                10,
                {"title": "x" * 11},
                "title is 11 characters long; the most is 10",
            ),
            (
                "TASK_DESCRIPTION_MAX_LENGTH",
                5,
                {"description": "six ch"},
                "description is 6 characters long; the most is 5",
            ),
            (
                "TASK_KWARGS_MAX_BYTES",
                20,
                {"kwargs": {"steps": 1, "delay": 0.25}},
                "kwargs is 27 bytes long as JSON; the most is 20",
            ),
        ],
    )
    def test_creation_bounds(self, settings, setting, value, create, message) -> None:
        setattr(settings, setting, value)
        with pytest.raises(TaskInputError) as refused:
            task_create(**{"title": "t", **create})
        assert str(refused.value) == message
        assert not Task.objects.exists() and not Event.objects.exists()

    def test_the_form_and_the_command_say_the_same_line(self, settings, client, user) -> None:
        settings.TASK_KWARGS_MAX_BYTES = 20
        raw = '{"steps": 1, "delay": 0.25}'
        with pytest.raises(CommandError, match="kwargs is 27 bytes long; the most is 20"):
            call_command("create_task", "t", "--kwargs", raw)
        client.force_login(user)
        response = client.post(
            "/tasks/new/",
            {"function": "tasks.examples.pipeline", "title": "t", "kwargs": raw},
            HTTP_HX_REQUEST="true",
        )
        assert response.status_code == 422
        assert "kwargs is 27 bytes long; the most is 20" in response.content.decode()
        assert not Task.objects.exists()

    def test_answer_bound(self, settings) -> None:
        settings.TASK_ANSWER_MAX_LENGTH = 3
        waiting = make_execution(Status.WAITING_FOR_INPUT)
        with pytest.raises(TaskInputError, match="the answer is 4 characters long; the most is 3"):
            execution_answer(execution=waiting, answer="four")
        assert Execution.objects.get(pk=waiting.pk).answer == ""
        execution_answer(execution=waiting, answer="yes")

    @pytest.mark.parametrize(
        ("name", "value", "reason"),
        [
            ("TASK_TITLE_MAX_LENGTH", "500", "TASK_TITLE_MAX_LENGTH must be at most 200, got 500"),
            ("TASK_LOG_LINES_MAX", "lots", "TASK_LOG_LINES_MAX must be a whole number"),
            ("TASK_KWARGS_MAX_BYTES", "1", "TASK_KWARGS_MAX_BYTES must be at least 2"),
            ("EVENTS_STREAM_LEASE_SECONDS", "0", "EVENTS_STREAM_LEASE_SECONDS must be at least"),
            ("HTTPS", "please", "HTTPS must be one of"),
        ],
    )
    def test_a_bad_bound_stops_start_up_with_one_line(self, name, value, reason, tmp_path) -> None:
        result = _manage("check", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", **{name: value})
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {reason}"), result.stderr


@pytest.mark.django_db
@pytest.mark.postgres
class TestWhatFunctionsWrite:
    def test_log_lines_past_the_bound_are_dropped_and_counted_in_one_line(self, settings) -> None:
        settings.TASK_LOG_LINES_MAX = 3
        task = make_task(kwargs={"steps": 4, "delay": 0})  # 8 log lines
        run_runnable()
        execution = Execution.objects.get(pk=task.latest_execution_id)
        assert execution.status == Status.SUCCEEDED and execution.log_lines == 8
        lines = list(
            Event.objects.filter(execution_id=execution.pk, type="execution.log")
            .order_by("id")
            .values_list("data__message", flat=True)
        )
        assert lines == [
            "step 1 of 4: working for 0s",
            "step 1 of 4: done",
            "step 2 of 4: working for 0s",
            "5 log lines dropped: the most kept per attempt is 3 (TASK_LOG_LINES_MAX)",
        ]

    def test_a_long_log_line_is_cut_and_says_so(self, settings) -> None:
        settings.TASK_LOG_LINE_MAX_LENGTH = 80
        running = make_execution(Status.RUNNING)
        execution_log(execution=running, level="info", message="x" * 200 + "\ud800")
        message = Event.objects.filter(type="execution.log").latest("id").data["message"]
        assert len(message) == 80 and message.endswith("… [121 more characters cut]")

    def test_a_prompt_past_the_bound_fails_the_execution_with_one_line(self, settings) -> None:
        settings.TASK_PROMPT_MAX_LENGTH = 10
        task = make_task(kwargs={"steps": 0, "delay": 0, "ask": "Shall we go on with it?"})
        run_runnable()
        execution = Execution.objects.get(pk=task.latest_execution_id)
        assert execution.status == Status.FAILED
        assert execution.error == "ValueError: the prompt is 23 characters long; the most is 10"

    def test_the_worker_runs_only_task_functions(self, settings) -> None:
        task = make_task(kwargs={"steps": 0, "delay": 0})
        # A row edited around the services, or a setting changed since it was made.
        Task.objects.filter(pk=task.pk).update(function="tests.tasks.engine.exits")
        settings.TASK_FUNCTIONS = ["tasks.examples.pipeline"]
        run_runnable()
        execution = Execution.objects.get(pk=task.latest_execution_id)
        assert execution.status == Status.FAILED
        assert execution.error == (
            "function tests.tasks.engine.exits is not in TASK_FUNCTIONS; no worker runs it"
        )

    def test_a_result_json_cannot_hold_fails_the_execution_with_one_line(self) -> None:
        task = make_task(function="tests.tasks.engine.nan_result")
        run_runnable()
        execution = Execution.objects.get(pk=task.latest_execution_id)
        assert execution.status == Status.FAILED
        assert execution.error == "ValueError: the result contains nan, which JSON cannot store"


@pytest.mark.django_db
@pytest.mark.postgres
def test_log_download_is_streamed_a_page_at_a_time(client, user) -> None:
    execution = make_execution(Status.RUNNING)
    Event.objects.bulk_create(
        Event(
            type="execution.log",
            task_id=execution.task_id,
            execution_id=execution.pk,
            data={"level": "info", "message": f"line {i}"},
        )
        for i in range(1234)
    )
    client.force_login(user)
    response = client.get(f"/tasks/{execution.task_id}/log.txt")
    assert response.status_code == 200
    assert response.is_async  # not turned into a list under ASGI
    chunks: list[str] = []

    async def read() -> None:
        async for chunk in response.streaming_content:
            chunks.append(chunk.decode())

    async_to_sync(read)()
    assert len(chunks) == 3  # 500 + 500 + 234 lines: one query and one piece per page
    text = "".join(chunks)
    assert [line.split(" INFO ")[1] for line in text.splitlines()] == [
        f"line {i}" for i in range(1234)
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
def test_open_streams_per_user_are_counted_across_processes(
    start_server,
    redis_env,
    login,
    open_streams,
) -> None:
    env = redis_env(EVENTS_MAX_STREAMS_PER_USER="2", EVENTS_STREAM_LEASE_SECONDS="1.5")
    a = start_server("daphne", env=env)
    b = start_server("uvicorn", env=env)
    cookies = login(a)  # one session, valid on both (one database, one key)
    first = open_streams(a.url, cookies=cookies)
    second = open_streams(b.url, cookies=cookies)
    assert (first.wait_status(), second.wait_status()) == (200, 200)
    for server in (a, b):
        refused = open_streams(server.url, cookies=cookies)
        assert refused.wait_status() == 429
        refused.wait_done()
        assert refused.body == b"too many open streams: at most 2 per user\n"

    def opens(server) -> bool:
        stream = open_streams(server.url, cookies=cookies)
        if stream.wait_status() == 200:
            return True
        stream.close()
        return False

    first.close()  # its slot is freed when the server notices the closed connection
    wait_for(lambda: opens(b), what="a closed stream's slot to be freed")
    # Now two open again (second, and the new one on b). b dies without a word: its
    # slots stay in Redis until their lease runs out, then a's users may open again.
    b.stop(signal.SIGKILL)
    wait_for(lambda: opens(a), what="a killed server's slots to be freed")
    wait_for(lambda: opens(a), what="a second slot")
    refused = open_streams(a.url, cookies=cookies)
    assert refused.wait_status() == 429
