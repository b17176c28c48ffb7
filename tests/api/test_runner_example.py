"""examples/runner.sh, a runner in POSIX shell and curl, for real: a subprocess reporting to
a real server, followed by a real /events/ client, its question answered on the dashboard;
then one killed mid-step, whose lease runs out (`runner lost`)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import httpx
import pytest

from tasks.api.tokens import token_create
from tests.conftest import PASSWORD
from tests.servers import ROOT, login_cookies, process_env

pytestmark = pytest.mark.django_db(transaction=True)

RUNNER = ROOT / "examples" / "runner.sh"


class Runner:
    """examples/runner.sh under /bin/sh in its own session; its output kept."""

    def __init__(self, url: str, token: str, execution_id: int, **env: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            ["/bin/sh", str(RUNNER), str(execution_id)],
            cwd=ROOT,
            env={
                "PATH": os.environ["PATH"],
                "TASKSTREAM_URL": url,
                "TASKSTREAM_TOKEN": token,
                **env,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)


@pytest.fixture
def runners():
    started: list[Runner] = []

    def start(*args, **kwargs) -> Runner:
        runner = Runner(*args, **kwargs)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.kill()


def _external_task(server, token: str) -> tuple[int, int]:
    response = httpx.post(
        f"{server.url}/api/tasks/",
        json={"title": "shell runner", "function": "external"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["latest_execution"]["id"]


def _status_to(to: str):
    return lambda e: e["type"] == "execution.status" and e["data"]["to"] == to


def test_the_shell_runner_reports_steps_progress_logs_a_question_and_success(
    start_server, open_streams, runners, user
):
    server = start_server("serve", env=process_env(EVENTS_HEARTBEAT_SECONDS="1"))
    token = token_create(user=user, name="runner").secret
    task_id, execution_id = _external_task(server, token)
    stream = open_streams(
        server.url,
        params={"execution": execution_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert stream.wait_status() == 200
    stream.wait(lambda s: len(s.frames) >= 1)

    runner = runners(
        server.url, token, execution_id, RUNNER_WORK_SECONDS="1", RUNNER_QUESTION="Publish it?"
    )
    stream.wait(lambda s: any(map(_status_to("waiting_for_input"), s.events())), timeout=60)
    waiting = next(filter(_status_to("waiting_for_input"), stream.events()))
    assert waiting["data"]["prompt"] == "Publish it?"

    # Answered on the dashboard, by a person, through its own form.
    cookies = login_cookies(server.url, "alice", PASSWORD)
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as browser:
        page = browser.get(f"/tasks/{task_id}/")
        assert page.status_code == 200 and "Publish it?" in page.text
        answered = browser.post(
            f"/tasks/{task_id}/attempts/1/answer/",
            data={"answer": 'yes, "ship" it', "csrfmiddlewaretoken": cookies["csrftoken"]},
            headers={"Referer": f"{server.url}/tasks/{task_id}/"},
        )
        assert answered.status_code == 302

        stream.wait(lambda s: any(map(_status_to("succeeded"), s.events())), timeout=60)
        assert runner.wait() == 0, "".join(runner.lines)

        events = stream.events()
        kinds = [e["type"] for e in events]
        steps = [(e["type"], e["data"]["name"]) for e in events if e["type"].startswith("step.")]
        assert steps == [
            ("step.started", "fetch"),
            ("step.completed", "fetch"),
            ("step.started", "transform"),
            ("step.completed", "transform"),
            ("step.started", "publish"),
            ("step.completed", "publish"),
        ]
        progress = [
            (e["data"]["done"], e["data"]["total"])
            for e in events
            if e["type"] == "execution.progress"
        ]
        assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
        logs = [e["data"]["message"] for e in events if e["type"] == "execution.log"]
        assert "fetching the input" in logs and 'answer was: yes, "ship" it' in logs
        answered_event = next(e for e in events if e["type"] == "execution.answered")
        assert answered_event["data"] == {"answer": 'yes, "ship" it', "by": "alice"}
        assert kinds.index("execution.answered") < kinds.index(
            "step.started", kinds.index("execution.answered")
        )
        assert [e["data"]["to"] for e in events if e["type"] == "execution.status"] == [
            "running",
            "waiting_for_input",
            "running",
            "succeeded",
        ]
        assert stream.ids() == sorted(set(stream.ids()))  # in order, no duplicate

        # The same task, on the same dashboard and API.
        detail = httpx.get(
            f"{server.url}/api/tasks/{task_id}/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()
        assert detail["status"] == "succeeded"
        assert detail["latest_execution"]["result"] == {"answer": 'yes, "ship" it'}
        page = browser.get(f"/tasks/{task_id}/").text
        assert "transform" in page and "publish" in page and "Succeeded" in page


def test_a_runner_that_dies_is_failed_as_runner_lost(start_server, open_streams, runners, user):
    # The in-process worker of `serve` reaps expired leases about once a second.
    server = start_server("serve", env=process_env(WORKER_LEASE_SECONDS="2"))
    token = token_create(user=user, name="runner").secret
    _, execution_id = _external_task(server, token)
    stream = open_streams(
        server.url,
        params={"execution": execution_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert stream.wait_status() == 200
    runner = runners(server.url, token, execution_id, RUNNER_WORK_SECONDS="600")
    stream.wait(lambda s: any(e["type"] == "step.started" for e in s.events()), timeout=60)
    runner.kill()  # kill -9: no goodbye, no more heartbeats

    stream.wait(lambda s: any(map(_status_to("failed"), s.events())), timeout=60)
    failed = next(filter(_status_to("failed"), stream.events()))
    assert failed["data"] == {"from": "running", "to": "failed", "error": "runner lost"}
    step = next(e for e in stream.events() if e["type"] == "step.failed")
    assert step["data"]["name"] == "fetch" and step["data"]["error"] == "runner lost"
