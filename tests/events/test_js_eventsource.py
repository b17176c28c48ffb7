"""A third-party client: the npm `eventsource` package (tests/js/follow.mjs) following a
quiet task's stream through `end` rotations and a server restart, as the program that
reported the loss did. Every matching event must arrive exactly once, in order.

`eventsource` 5 (eventsource-parser 4, `onId`) takes the `id:` of a frame with no data,
as the WHATWG rules say; version 4 (eventsource-parser 3) did not: it kept only the ids
of frames with data, so it would resend nothing after a first frame alone. Version 5
declares node >= 22.12; it runs on Debian's node 20 here (`npm ci` only warns).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable

import pytest

from events import types
from tests.events.test_heartbeat_and_end import QUIET, emit, quiet_task  # noqa: F401
from tests.servers import ROOT, process_env, spawn

JS = ROOT / "tests" / "js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(NODE is None, reason="SKIPPED LOUDLY: no node on PATH (apt install nodejs)"),
    pytest.mark.skipif(
        not (JS / "node_modules" / "eventsource").is_dir(),
        reason="SKIPPED LOUDLY: no tests/js/node_modules (npm ci --prefix tests/js, or make test)",
    ),
]

FAST_TICK = {"EVENTS_SAFETY_TICK_SECONDS": "0.1"}
LISTEN = [*types.registered(), types.END, types.RESET]


class NodeFollower:
    """`node follow.mjs` in a subprocess; its JSON lines are kept as they come."""

    def __init__(self, url: str, cookies: dict[str, str]) -> None:
        cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TASKSTREAM_COOKIE": cookie}
        self.records: list[dict] = []
        self.noise: list[str] = []
        self._changed = threading.Condition()
        command = [NODE, str(JS / "follow.mjs"), url, *LISTEN]
        self.process = spawn(command, env, self._read, stdin=subprocess.PIPE)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    self.noise.append(line)  # node's own warnings, kept for a failure
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def count(self, kind: str, type_: str | None = None) -> int:
        with self._changed:
            return sum(
                1
                for r in self.records
                if r["kind"] == kind and (type_ is None or r.get("type") == type_)
            )

    def ids(self) -> list[int]:
        """Ids of the domain events received, in order (control events left out)."""
        with self._changed:
            return [
                int(r["id"])
                for r in self.records
                if r["kind"] == "event" and r["type"] in types.registered()
            ]

    def resent(self) -> list[str]:
        with self._changed:
            return [r["last_event_id"] for r in self.records if r["kind"] == "connect"]

    def wait(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = end - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"condition not met (node exit {self.process.poll()}); last records "
                        f"{self.records[-8:]}; other output {self.noise[-5:]}"
                    )
                self._changed.wait(left)

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()  # follow.mjs exits when its stdin closes
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def node_follow():
    started: list[NodeFollower] = []

    def start(url: str, cookies: dict[str, str]) -> NodeFollower:
        follower = NodeFollower(url, cookies)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.close()


def test_eventsource_follows_a_quiet_task_through_ends_exactly_once(
    start_server, login, node_follow
) -> None:
    server = start_server("uvicorn", env=process_env(EVENTS_STREAM_MAX_SECONDS="1", **FAST_TICK))
    emit(1)
    client = node_follow(f"{server.url}/events/?task={QUIET}", login(server))
    client.wait(lambda: client.count("open") == 1)
    matching: list[int] = []
    for rotation in range(4):
        emit(1, 2)  # while connected: other tasks only
        ends = client.count("event", types.END)
        client.wait(lambda ends=ends: client.count("event", types.END) > ends)
        # Between `end` and the reconnection (retry: 2000): what was lost before.
        emit(1)
        if rotation >= 2:  # two rotations with nothing matching at all, then some
            matching += emit(QUIET, 2)
            emit(1)
    client.wait(lambda: client.ids()[-1:] == matching[-1:], timeout=60)
    assert client.ids() == matching
    assert "" not in client.resent()[1:]  # every reconnection resent an id


def test_eventsource_follows_a_quiet_task_across_a_restart_exactly_once(
    start_server, login, node_follow
) -> None:
    server = start_server("daphne", env=process_env(**FAST_TICK))
    start = emit(1)[0]  # the log's end: where a live stream starts
    cookies = login(server)
    client = node_follow(f"{server.url}/events/?task={QUIET}", cookies)
    client.wait(lambda: client.count("open") == 1)
    server.stop()  # before the stream sent any event
    client.wait(lambda: client.count("error") >= 1)
    down = [*emit(QUIET, 2), *emit(1), *emit(QUIET)]
    matching = [i for i in down if i != down[2]]
    server.start()  # the same port
    client.wait(lambda: client.ids()[-1:] == matching[-1:], timeout=60)
    later = emit(QUIET)
    client.wait(lambda: client.ids()[-1:] == later, timeout=30)
    assert client.ids() == matching + later
    # The only id it was ever given before the restart came in the data-less first frame.
    assert client.resent()[:2] == ["", str(start)]
    assert "" not in client.resent()[1:]
