"""`manage.py watch`: follow one task over the server's real /events/ stream, in a terminal.

A program like any other: it reads the task through the JSON API, then follows
`/events/?task=ID` with the bearer token, resuming with `Last-Event-ID` (the last id it
saw, including the ids of the first frame, `end` and `reset`) after a disconnect or a
server restart. Steps are printed as they start and end, progress as a bar, log lines as
they come; at a prompt it asks on the terminal (when stdin is one) and answers through
the API. Standard library only (http.client, our own SSE parser): the command needs
nothing the server does not already install.

Exit codes (contract): 0 the task succeeded, 1 failed, 2 cancelled; 3 it could not be
followed (bad token, unknown task, bad arguments); 130 interrupted.
"""

from __future__ import annotations

import codecs
import contextlib
import http.client
import json
import os
import queue
import select
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 2
EXIT_CANNOT_FOLLOW = 3
EXIT_CODES = {"succeeded": EXIT_SUCCEEDED, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}
FINISHED = frozenset(EXIT_CODES)

READ_TIMEOUT = 60.0  # seconds without a byte (the server sends a heartbeat every 15 s)
RECONNECT_MAX = 5.0  # seconds between reconnection attempts, at most


class CannotFollow(Exception):
    """The task cannot be followed (401, 403, 404, bad input). One line."""


class Unreachable(Exception):
    """The server did not answer (down, restarting): try again."""


# -- Server-Sent Events ------------------------------------------------------------------


@dataclass
class Frame:
    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass
class SSEParser:
    """The WHATWG event-stream rules: lines end at CRLF, CR or LF; one space after the
    colon is dropped; data lines join with LF; a blank line dispatches."""

    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None
    retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buffer += self._decoder.decode(chunk)
        frames: list[Frame] = []
        while True:
            n, r = self._buffer.find("\n"), self._buffer.find("\r")
            if n == -1 and r == -1:
                return frames
            if r == -1 or (n != -1 and n < r):
                line, self._buffer = self._buffer[:n], self._buffer[n + 1 :]
            elif r + 1 == len(self._buffer):
                return frames  # a CR at the end may be half of a CRLF
            else:
                skip = 2 if self._buffer[r + 1] == "\n" else 1
                line, self._buffer = self._buffer[:r], self._buffer[r + skip :]
            frame = self._line(line)
            if frame is not None:
                frames.append(frame)

    def _line(self, line: str) -> Frame | None:
        if line == "":
            if not self._data and self._id is None:
                self._event = ""
                return None
            frame = Frame(event=self._event or "message", data="\n".join(self._data), id=self._id)
            self._data, self._event, self._id = [], "", None
            return frame
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


# -- HTTP --------------------------------------------------------------------------------


class Api:
    """The server's JSON API and its /events/ stream, with a bearer token."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CannotFollow(f"--url must look like http://127.0.0.1:8000, got {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise CannotFollow(f"--url has a bad port: {base_url!r}") from None
        self.prefix = parts.path.rstrip("/")
        self.token = token

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON) of one API call; Unreachable when the server does not answer."""
        connection = self._connection(30)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = self._headers(Accept="application/json")
            if payload is not None:
                headers["Content-Type"] = "application/json"
            connection.request(method, self.prefix + path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from None
        finally:
            connection.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = {"detail": raw[:200].decode(errors="replace").strip()}
        return response.status, data

    def stream(self, path: str, last_event_id: int | None) -> Iterator[bytes]:
        """The body of an SSE response, chunk by chunk; CannotFollow on 401/403/404,
        Unreachable on anything that calls for a retry."""
        connection = self._connection(READ_TIMEOUT)
        try:
            headers = self._headers(Accept="text/event-stream")
            if last_event_id is not None:
                headers["Last-Event-ID"] = str(last_event_id)
            try:
                connection.request("GET", self.prefix + path, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise Unreachable(str(exc) or type(exc).__name__) from None
            if response.status in (401, 403, 404):
                reason = response.read(500).decode(errors="replace").strip()
                raise CannotFollow(f"the stream answered {response.status}: {reason}")
            if response.status != 200:
                raise Unreachable(f"the stream answered {response.status}")
            while True:
                try:
                    chunk = response.read1(65536)
                except (OSError, http.client.HTTPException) as exc:
                    raise Unreachable(str(exc) or type(exc).__name__) from None
                if not chunk:
                    return
                yield chunk
        finally:
            connection.close()


# -- the terminal ------------------------------------------------------------------------


def _seconds(ms: Any) -> str:
    return f" ({ms / 1000:.1f}s)" if isinstance(ms, int | float) else ""


class Screen:
    """What the watcher prints; a progress bar redrawn in place on a terminal."""

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._bar_shown = False

    def line(self, text: str) -> None:
        if self._bar_shown:
            self.out.write("\n")
            self._bar_shown = False
        self.out.write(text + "\n")
        self.out.flush()

    def progress(self, done: int, total: int | None, message: str) -> None:
        if total:
            width = max(10, min(40, shutil.get_terminal_size((80, 24)).columns - 40))
            filled = round(width * min(done, total) / total)
            percent = round(100 * min(done, total) / total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total}"
        else:
            bar = f"[{done} done]"
        text = f"{bar} {message}".rstrip()
        if self.tty:
            self.out.write("\r\x1b[2K" + text)
            self.out.flush()
            self._bar_shown = True
        else:
            self.line(text)


# -- the watcher -------------------------------------------------------------------------


@dataclass
class Prompt:
    execution_id: int
    text: str
    asked: bool = False


class Watcher:
    def __init__(
        self,
        api: Api,
        task_id: int,
        *,
        out: TextIO,
        stdin: TextIO | None,
        interactive: bool,
        tty: bool,
    ) -> None:
        self.api = api
        self.task_id = task_id
        self.screen = Screen(out, tty=tty)
        self.stdin = stdin
        self.interactive = interactive
        self.last_id: int | None = None
        self.steps_shown: set[tuple[int, str]] = set()
        self.prompt: Prompt | None = None
        self.retry_seconds = 2.0
        self.disconnected = False
        self._frames: queue.Queue[tuple[str, Any]] = queue.Queue()

    # -- state from the API ---------------------------------------------------------------
    def _detail(self) -> dict[str, Any]:
        status, body = self.api.request("GET", f"/api/tasks/{self.task_id}/")
        if status == 200 and isinstance(body, dict):
            return body
        detail = body.get("detail") if isinstance(body, dict) else body
        if status in (400, 401, 403, 404):
            raise CannotFollow(f"task {self.task_id}: {status} {detail}")
        raise Unreachable(f"the API answered {status}: {detail}")

    def _show_state(self, task: dict[str, Any]) -> None:
        execution = task.get("latest_execution") or {}
        for step in execution.get("steps", []):
            self._step(step)
        progress = execution.get("progress") or {}
        if progress.get("total") or progress.get("done"):
            self.screen.progress(
                progress.get("done", 0), progress.get("total"), progress.get("message", "")
            )
        if execution.get("status") == "waiting_for_input" and not execution.get("answer"):
            self._waiting(execution["id"], execution.get("prompt", ""))

    # -- events ---------------------------------------------------------------------------
    def _step(self, step: dict[str, Any]) -> None:
        """A step's start or end, once each (the state read first and the replayed
        events may both carry it)."""
        step_id = int(step.get("step_id") or step.get("id") or 0)
        status = str(step.get("status"))
        if (step_id, status) in self.steps_shown:
            return
        self.steps_shown.add((step_id, status))
        name = step.get("name", "?")
        if status == "running":
            self.screen.line(f"[step] {name} started")
        elif status in ("succeeded", "skipped"):
            self.screen.line(f"[ ok ] {name}{_seconds(step.get('duration_ms'))}")
        elif status == "failed":
            error = f": {step['error']}" if step.get("error") else ""
            self.screen.line(f"[FAIL] {name}{error}")

    def _waiting(self, execution_id: int, prompt: str) -> None:
        self.prompt = Prompt(execution_id=execution_id, text=prompt)
        self.screen.line(f"[ask ] {prompt}")
        if not self.interactive:
            self.screen.line(
                f"       waiting for an answer: on the dashboard, or "
                f"`manage.py answer {execution_id} TEXT`"
            )

    def _event(self, event: dict[str, Any]) -> int | None:
        """Show one event; an exit code once the task has finished."""
        kind = event.get("type", "")
        data = event.get("data") or {}
        if kind.startswith("step."):
            self._step(data)
        elif kind == "execution.progress":
            self.screen.progress(data.get("done", 0), data.get("total"), data.get("message", ""))
        elif kind == "execution.log":
            level = str(data.get("level", "info"))
            self.screen.line(f"  {level:<7} {data.get('message', '')}")
        elif kind == "execution.created":
            self.screen.line(f"[run ] attempt {data.get('number', '?')} queued")
        elif kind == "execution.answered":
            by = data.get("by") or "the command line"
            self.screen.line(f"[ans ] {by} answered: {data.get('answer', '')}")
            if self.prompt is not None and self.prompt.execution_id == event.get("execution_id"):
                self.prompt = None
        elif kind == "execution.status":
            to = data.get("to")
            if to == "waiting_for_input":
                self._waiting(int(event["execution_id"]), data.get("prompt", ""))
            else:
                if self.prompt is not None and self.prompt.execution_id == event.get(
                    "execution_id"
                ):
                    self.prompt = None
                error = f": {data['error']}" if data.get("error") else ""
                self.screen.line(f"[run ] {data.get('from')} -> {to}{error}")
        elif kind == "task.status" and data.get("to") in FINISHED:
            # A finished attempt may be retried at once (a lost worker): ask the API.
            task = self._detail()
            if task.get("status") in FINISHED:
                return self._finish(task)
        return None

    def _finish(self, task: dict[str, Any]) -> int:
        status = str(task.get("status"))
        execution = task.get("latest_execution") or {}
        error = f": {execution['error']}" if execution.get("error") else ""
        self.screen.line(f"task {self.task_id} {status}{error}")
        return EXIT_CODES[status]

    # -- the stream, in a thread ------------------------------------------------------------
    def _read(self, last_id: int | None) -> None:
        parser = SSEParser()
        try:
            path = f"/events/?task={quote(str(self.task_id))}"
            for number, chunk in enumerate(self.api.stream(path, last_id)):
                if number == 0:
                    self._frames.put(("connected", None))
                for frame in parser.feed(chunk):
                    self._frames.put(("frame", frame))
            self._frames.put(("closed", parser.retry_ms))
        except CannotFollow as exc:
            self._frames.put(("fatal", str(exc)))
        except Unreachable:
            self._frames.put(("closed", parser.retry_ms))

    def _connect(self) -> None:
        threading.Thread(target=self._read, args=(self.last_id,), daemon=True).start()

    def _answer_from_terminal(self) -> None:
        """Read a line if one was typed; send it as the answer."""
        prompt = self.prompt
        if prompt is None or not self.interactive or self.stdin is None:
            return
        if not prompt.asked:
            self.screen.line("answer> (type your answer and press Enter)")
            prompt.asked = True
        ready, _, _ = select.select([self.stdin], [], [], 0.1)
        if not ready:
            return
        text = self.stdin.readline()
        if text == "":  # end of input: stop asking
            self.interactive = False
            return
        answer = text.rstrip("\n")
        try:
            status, body = self.api.request(
                "POST", f"/api/executions/{prompt.execution_id}/answer/", {"answer": answer}
            )
        except Unreachable as exc:
            self.screen.line(f"       could not send the answer ({exc}); type it again")
            return
        if status == 200:
            self.prompt = None  # the execution.answered event will say so
        else:
            detail = body.get("detail") if isinstance(body, dict) else body
            self.screen.line(f"       not answered: {detail}")
            if status == 409:
                self.prompt = None

    # -- main loop --------------------------------------------------------------------------
    def run(self) -> int:
        task = self._detail_patiently()
        execution = task.get("latest_execution") or {}
        self.screen.line(
            f"task {task['id']}: {task['title']} ({task['function']}) - {task['status']}"
            + (f", attempt {execution.get('number')}" if execution else "")
        )
        if task["status"] in FINISHED:
            return self._finish(task)
        self.last_id = int(task["last_event_id"])
        self._show_state(task)
        self._connect()
        while True:
            if self.prompt is not None and self.interactive:
                self._answer_from_terminal()
                try:
                    kind, value = self._frames.get_nowait()
                except queue.Empty:
                    continue
            else:
                kind, value = self._frames.get()
            if kind == "fatal":
                raise CannotFollow(value)
            if kind == "connected":
                if self.disconnected:
                    self.disconnected = False
                    self.screen.line(f"(reconnected: resuming after event {self.last_id})")
                continue
            if kind == "closed":
                if isinstance(value, int):
                    self.retry_seconds = min(RECONNECT_MAX, value / 1000)
                if not self.disconnected:
                    self.disconnected = True
                    self.screen.line("(disconnected: reconnecting)")
                self._reconnect_later()
                continue
            frame: Frame = value
            if frame.id is not None and frame.id.isdigit():
                self.last_id = int(frame.id)  # every id: events, the first frame, end, reset
            if frame.event == "reset":
                task = self._detail_patiently()
                self.screen.line("(the server could not replay everything: state refreshed)")
                if task["status"] in FINISHED:
                    return self._finish(task)
                self._show_state(task)
                continue
            if frame.event == "end" or not frame.data:
                continue  # `end`: the server closes, we reconnect from last_id
            try:
                event = json.loads(frame.data)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            code = self._event(event)
            if code is not None:
                return code

    def _detail_patiently(self) -> dict[str, Any]:
        while True:
            try:
                return self._detail()
            except Unreachable as exc:
                self.screen.line(f"(server unreachable: {exc}; retrying)")
                time.sleep(RECONNECT_MAX)

    def _reconnect_later(self) -> None:
        """Reconnect after the server's retry delay (a client's backoff, not a wait for
        anything in particular), resuming after the last id seen."""

        def later() -> None:
            time.sleep(self.retry_seconds)
            self._read(self.last_id)

        threading.Thread(target=later, daemon=True).start()


def watch(
    *,
    url: str,
    token: str,
    task_id: int,
    out: TextIO,
    stdin: TextIO | None,
) -> int:
    """Follow the task; the exit code (see module docs)."""
    api = Api(url, token)
    interactive = bool(stdin is not None and _isatty(stdin))
    watcher = Watcher(api, task_id, out=out, stdin=stdin, interactive=interactive, tty=_isatty(out))
    return watcher.run()


def _isatty(stream: Any) -> bool:
    with contextlib.suppress(Exception):
        return bool(stream.isatty())
    return False


def token_from_env() -> str:
    return os.environ.get("TASKSTREAM_TOKEN", "")
