"""Processes of a bench run: the server under test (daphne or uvicorn, in its own
process group, open-file limit raised), the Django-side helpers, and /proc readings."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY = {"daphne": "Listening on TCP address", "uvicorn": "Uvicorn running on"}


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine() -> dict:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "kernel": os.uname().release,
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }


class Server:
    """One server process serving bench.asgi (or the eventstream variant)."""

    def __init__(self, kind: str, env: dict[str, str], *, app: str = "bench.asgi:application"):
        if kind not in READY:
            raise ValueError(f"unknown server {kind!r}")
        self.kind = kind
        self.env = env
        self.app = app
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        py = sys.executable
        if self.kind == "daphne":
            endpoint = f"tcp:port={self.port}:backlog=4096:interface=127.0.0.1"
            return [py, "-m", "daphne", "-v", "1", "-e", endpoint, self.app]
        return [
            py, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", str(self.port),
            "--lifespan", "off", "--no-access-log", "--backlog", "4096",
            "--log-level", "warning", "--timeout-keep-alive", "30",
        ]  # fmt: skip

    def start(self, timeout: float = 60) -> Server:
        from tests.servers import spawn

        self.process = spawn(self.command(), dict(self.env), self._read, preexec_fn=raise_nofile)
        # uvicorn at log level warning prints no ready line: poll the port instead.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{''.join(self.lines)}")
            if self._ready.is_set() or self._answers():
                return self
            self._ready.wait(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} did not start:\n{''.join(self.lines)}")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/__bench__/stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if len(self.lines) < 2000:
                self.lines.append(line)
            if READY[self.kind] in line:
                self._ready.set()

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/__bench__/stats", timeout=30).json()

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Server:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def djangoside(env: dict[str, str], *args: str, timeout: float = 600) -> dict:
    """Run `python -m bench.djangoside ARGS` and return the JSON on its last line."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.djangoside", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.djangoside {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Producer:
    """A separate producer process (needs the Redis layer so its events reach the server)."""

    def __init__(self, env: dict[str, str], spec: dict) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.djangoside", "produce", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def result(self, timeout: float) -> dict:
        out, err = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise RuntimeError(f"producer failed:\n{err[-3000:]}")
        return json.loads(out.strip().splitlines()[-1])


def login_cookie(base_url: str, username: str, password: str) -> str:
    """Log in once through the real login form; the Cookie header every client reuses."""
    from tests.servers import login_cookies

    cookies = login_cookies(base_url, username, password)
    return "; ".join(f"{k}={v}" for k, v in cookies.items())
