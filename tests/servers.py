"""Real servers (and, later, workers) for tests: subprocesses on free ports that open the
same test database as the test process. Readiness is read from the server's own log
line, never guessed with a sleep."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]

READY_LINES = {
    "daphne": "Listening on TCP address",
    "serve": "Listening on TCP address",
    "uvicorn": "Uvicorn running on",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """A DATABASE_URL for the database this test process is using."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess server or worker: production settings on the
    test database. Pass REDIS_URL (and CHANNEL_LAYER_PREFIX) to share a Redis layer."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="tests-only-secret-key",
        DATABASE_URL=database_url(),
        PYTHONUNBUFFERED="1",
        # The tests' own task functions too: a worker runs only what TASK_FUNCTIONS lists.
        TASK_FUNCTIONS=",".join(settings.TASK_FUNCTIONS),
    )
    env.update(extra)
    return env


def spawn(
    command: list[str], env: dict[str, str], read, *, preexec_fn=None, stdin=None
) -> subprocess.Popen[str]:
    """Start a process in its own session (so a stop reaches its children), with a thread
    handing its output (the process) to `read`."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        text=True,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
    threading.Thread(target=read, args=(process,), daemon=True).start()
    return process


class ServerProcess:
    """One ASGI server in a subprocess: `daphne`, `uvicorn`, or `serve` (ours: daphne plus
    the in-process worker, the embedded default)."""

    def __init__(
        self,
        kind: str,
        *,
        env: dict[str, str] | None = None,
        port: int | None = None,
        args: list[str] | None = None,
    ) -> None:
        if kind not in READY_LINES:
            raise ValueError(f"unknown server kind {kind!r}")
        self.kind = kind
        self.env = env if env is not None else process_env()
        self.port = port or free_port()
        self.args = args or []
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _command(self) -> list[str]:
        py = sys.executable
        if self.kind == "daphne":
            endpoint = f"tcp:port={self.port}:backlog=4096:interface=127.0.0.1"
            return [py, "-m", "daphne", "-e", endpoint, *self.args, "config.asgi:application"]
        if self.kind == "uvicorn":
            return [
                py,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                "--no-access-log",
                # Open SSE streams would otherwise hold a graceful shutdown for minutes.
                "--timeout-graceful-shutdown",
                "3",
                *self.args,
            ]
        return [py, "manage.py", "serve", "--port", str(self.port), *self.args]

    def start(self, timeout: float = 60) -> ServerProcess:
        self.lines = []
        self._ready.clear()
        self.process = spawn(self._command(), self.env, self._read)
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.kind} did not start:\n{self.output}")
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.kind} exited at start:\n{self.output}")
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        marker = READY_LINES[self.kind]
        for line in process.stdout:
            self.lines.append(line)
            if marker in line:
                self._ready.set()
        self._ready.set()  # exited: let start() see it

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()


def login_cookies(base_url: str, username: str, password: str) -> dict[str, str]:
    """Log in through the real login form; the session and CSRF cookies."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        page = client.get("/accounts/login/")
        page.raise_for_status()
        response = client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
                "next": "/",
            },
            headers={"Referer": f"{base_url}/accounts/login/"},
        )
        if response.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"login as {username} failed: {response.status_code}")
        return dict(client.cookies)


class WorkerProcess:
    """`manage.py worker` in a subprocess on the test database. Its output lines are kept;
    `start()` returns once the worker says it is ready, `wait_for_line()` waits for more."""

    READY = "ready: concurrency"

    def __init__(self, *, env: dict[str, str], args: list[str] | None = None) -> None:
        self.env = env
        self.args = args or []
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._changed = threading.Condition()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def start(self, timeout: float = 60) -> WorkerProcess:
        self.process = spawn(
            [sys.executable, "manage.py", "worker", *self.args], self.env, self._read
        )
        if not self.wait_for_line(self.READY, timeout):
            self.stop()
            raise RuntimeError(f"worker did not start:\n{self.output}")
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float = 30) -> bool:
        """True once a line containing `text` was printed; False on timeout or exit."""
        with self._changed:
            return self._changed.wait_for(
                lambda: (
                    any(text in line for line in self.lines)
                    or (self.process is not None and self.process.poll() is not None)
                ),
                timeout,
            ) and any(text in line for line in self.lines)

    def kill(self) -> None:
        """SIGKILL: the worker dies without releasing anything."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then wait for a clean exit; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        return self.process.returncode
