"""`manage.py watch` against a real server, in a pty (pexpect): steps, the progress bar,
log lines, a server restart in the middle (it resumes with Last-Event-ID and misses
nothing), the prompt answered on the terminal; and its exit codes."""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import pexpect
import pytest
from django.core.management import CommandError, call_command

from tasks.api.tokens import token_create
from tasks.external import external_log, external_step
from tests.servers import ROOT, process_env

pytestmark = pytest.mark.django_db(transaction=True)


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def external_task(self, title: str = "watched") -> tuple[int, int]:
        body = self.http.post("/api/tasks/", json={"title": title, "function": "external"}).json()
        return body["id"], body["latest_execution"]["id"]

    def report(self, execution_id: int, body: dict) -> dict:
        response = self.http.post(f"/api/executions/{execution_id}/report/", json=body)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def server(start_server):
    return start_server("daphne", env=process_env(EVENTS_HEARTBEAT_SECONDS="1"))


@pytest.fixture
def token(user) -> str:
    return token_create(user=user, name="watch").secret


def watch_command(task_id: int | str, server, *extra: str) -> list[str]:
    return ["manage.py", "watch", str(task_id), "--url", server.url, *extra]


def spawn_watch(task_id: int, server, token: str) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        watch_command(task_id, server),
        cwd=str(ROOT),
        env=process_env(TASKSTREAM_TOKEN=token),  # the token from the environment
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 120),
    )
    child.logfile_read = io.StringIO()  # the whole transcript
    return child


def test_watch_follows_a_task_across_a_server_restart_and_answers_on_the_terminal(server, token):
    api = Client(server.url, token)
    task_id, execution_id = api.external_task()
    api.report(execution_id, {"status": "running"})
    api.report(execution_id, {"step": "fetch", "status": "started"})

    child = spawn_watch(task_id, server, token)
    try:
        child.expect(rf"task {task_id}: watched \(external\) - running, attempt 1")
        child.expect(r"\[step\] fetch started")  # from the state read first
        api.report(execution_id, {"progress": {"done": 1, "total": 3, "message": "fetched"}})
        child.expect(r"\] +33% 1/3 fetched")
        api.report(execution_id, {"log": [{"level": "info", "message": "rows: 120"}]})
        child.expect(r"info +rows: 120")

        # The server goes away; meanwhile the execution moves on (written to the log).
        server.stop()
        child.expect(r"\(disconnected: reconnecting\)")
        external_step(execution_id=execution_id, name="fetch", status="completed")
        external_log(execution_id=execution_id, lines=[("warning", "while you were away")])
        server.start()
        child.expect(r"\(reconnected: resuming after event \d+\)")
        child.expect(r"\[ ok \] fetch \(\d+\.\ds\)")
        child.expect(r"warning +while you were away")

        # A question: asked on the terminal, answered through the API.
        api.report(execution_id, {"ask": "Deploy now?"})
        child.expect(r"\[ask \] Deploy now\?")
        child.expect("answer> ")
        child.sendline("yes please")
        child.expect(r"\[ans \] alice answered: yes please")
        answered = api.http.get(f"/api/tasks/{task_id}/").json()["latest_execution"]
        assert answered["answer"] == "yes please"

        api.report(execution_id, {"status": "running"})
        api.report(execution_id, {"status": "succeeded", "result": {"deployed": True}})
        child.expect(rf"task {task_id} succeeded")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    # Every event once: nothing lost or shown twice across the restart.
    transcript = child.logfile_read.getvalue()
    assert transcript.count("while you were away") == 1
    assert transcript.count("[ ok ] fetch") == 1 and transcript.count("rows: 120") == 1
    assert transcript.count("[step] fetch started") == 1


def test_watch_exits_2_when_the_task_is_cancelled(server, token):
    api = Client(server.url, token)
    task_id, execution_id = api.external_task()
    api.report(execution_id, {"status": "running"})
    child = spawn_watch(task_id, server, token)
    try:
        child.expect(rf"task {task_id}: ")
        # Cancel once the stream is open: the cancel request reaches the runner, which stops.
        api.http.post(f"/api/executions/{execution_id}/cancel/")
        child.expect("cancel requested")
        api.report(execution_id, {"status": "cancelled"})
        child.expect(rf"task {task_id} cancelled")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 2


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=process_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_watch_exit_codes_for_finished_tasks_and_refusals(server, token):
    api = Client(server.url, token)
    _, failed = api.external_task("fails")
    api.report(failed, {"status": "running"})
    api.report(failed, {"status": "failed", "error": "no disk"})
    failed_task = api.http.get(f"/api/events/?execution={failed}").json()["events"][0]["task_id"]
    done = _run([*watch_command(failed_task, server, "--token", token)])
    assert done.returncode == 1, done.stderr
    assert f"task {failed_task} failed: no disk" in done.stdout

    ok_task, ok = api.external_task("works")
    api.report(ok, {"status": "running"})
    api.report(ok, {"status": "succeeded"})
    assert _run(watch_command(ok_task, server, "--token", token)).returncode == 0

    # One refusal through a real process (its exit status), the others in this one.
    done = _run(watch_command(999_999, server, "--token", token))
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert done.stderr.strip() == "CommandError: task 999999: 404 No such task."
    refusals = [
        ((ok_task, "--url", server.url, "--token", "tsk_nope"), "401 invalid or revoked"),
        (("abc", "--url", server.url, "--token", token), "TASK_ID must be a positive"),
        ((ok_task, "--url", server.url, "--token", ""), "an API token is needed"),
        ((ok_task, "--url", "ftp://x", "--token", token), "--url must look like"),
    ]
    for args, message in refusals:
        with pytest.raises(CommandError) as refused:
            call_command("watch", *map(str, args))
        assert refused.value.returncode == 3
        assert message in str(refused.value) and "\n" not in str(refused.value)


def test_watch_without_a_terminal_says_where_to_answer(server, token):
    api = Client(server.url, token)
    task_id, execution_id = api.external_task()
    api.report(execution_id, {"status": "running"})
    api.report(execution_id, {"ask": "Which colour?"})
    process = subprocess.Popen(
        [sys.executable, *watch_command(task_id, server, "--token", token)],
        cwd=ROOT,
        env=process_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if f"manage.py answer {execution_id} TEXT" in line:
                break
        api.http.post(f"/api/executions/{execution_id}/answer/", json={"answer": "blue"})
        api.report(execution_id, {"status": "running"})
        api.report(execution_id, {"status": "failed", "error": "no blue paint"})
        assert process.wait(60) == 1
        rest = process.stdout.read()
        assert "alice answered: blue" in rest and "failed: no blue paint" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
