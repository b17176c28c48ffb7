"""A small spec-conformant SSE client for tests: real sockets, real HTTP, no mocks.

`SSEParser` follows the WHATWG event-stream rules (lines end at CRLF, CR or LF; a
leading space after the colon is dropped; data lines join with LF; comments kept for
the heartbeat tests). `Stream` reads one /events/ response in a background thread and
lets a test wait for a condition with a timeout (never a sleep).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

CONTROL = {"end", "reset", "fragment"}


@dataclass
class Frame:
    event: str = "message"
    data: str = ""
    id: str | None = None  # the id field of this frame, if it had one
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self):
        return json.loads(self.data)


class SSEParser:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._comments: list[str] = []
        self.retry: int | None = None
        self.last_event_id = ""

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buffer += self._decoder.decode(chunk)
        frames: list[Frame] = []
        while True:
            cut = self._line_end()
            if cut is None:
                return frames
            line, rest = cut
            self._buffer = rest
            frame = self._line(line)
            if frame is not None:
                frames.append(frame)

    def _line_end(self) -> tuple[str, str] | None:
        buf = self._buffer
        n, r = buf.find("\n"), buf.find("\r")
        if n == -1 and r == -1:
            return None
        if r == -1 or (n != -1 and n < r):
            return buf[:n], buf[n + 1 :]
        if r + 1 == len(buf):
            return None  # a CR at the end may be the first half of CRLF
        return buf[:r], buf[r + (2 if buf[r + 1] == "\n" else 1) :]

    def _line(self, line: str) -> Frame | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self._comments.append(line[1:].lstrip(" "))
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
            self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
            self.retry = int(value)
        return None

    def _dispatch(self) -> Frame | None:
        if not self._data and self._id is None and self._retry is None and not self._comments:
            self._event = ""
            return None
        frame = Frame(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id,
            retry=self._retry,
            comments=self._comments,
        )
        self._data, self._event, self._id, self._retry, self._comments = [], "", None, None, []
        return frame


class Stream:
    """One SSE response read in a background thread."""

    def __init__(
        self,
        base_url: str,
        path: str = "/events/",
        *,
        cookies: dict | None = None,
        params: dict | None = None,
        headers: dict | None = None,
    ) -> None:
        self.frames: list[Frame] = []
        self._events: list[dict] = []
        self._seen: set[int] = set()
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self.body = b""
        self.error: BaseException | None = None
        self.closed_by_server = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base_url, cookies=cookies, timeout=None)
        self._request = self._client.build_request("GET", path, params=params, headers=headers)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        parser = SSEParser()
        try:
            response = self._client.send(self._request, stream=True)
            stream = response.extensions.get("network_stream")
            self._socket = stream.get_extra_info("socket") if stream is not None else None
            try:
                with self._cond:
                    self.status = response.status_code
                    self.headers = response.headers
                    self._cond.notify_all()
                if response.status_code != 200:
                    self.body = response.read()
                    return
                for chunk in response.iter_raw():
                    if self._stop.is_set():
                        return
                    frames = parser.feed(chunk)
                    if frames:
                        parsed = [f.json() for f in frames if f.data and f.event not in CONTROL]
                        with self._cond:
                            self.frames.extend(frames)
                            self._events.extend(parsed)
                            self._seen.update(e["id"] for e in parsed)
                            self._cond.notify_all()
                self.closed_by_server = True
            finally:
                response.close()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            if not self._stop.is_set():
                self.error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    _done = False

    def wait(self, predicate: Callable[[Stream], bool], timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                if self.error is not None:
                    raise AssertionError(f"stream failed: {self.error!r}")
                left = end - time.monotonic()
                if left <= 0 or (self._done and not predicate(self)):
                    raise AssertionError(
                        f"condition not met (status {self.status}, {len(self.frames)} frames, "
                        f"done={self._done}): {[(f.event, f.id) for f in self.frames[-5:]]}"
                    )
                self._cond.wait(min(left, 0.5))

    def wait_status(self, timeout: float = 30) -> int:
        self.wait(lambda s: s.status is not None, timeout)
        assert self.status is not None
        return self.status

    def wait_done(self, timeout: float = 30) -> None:
        self.wait(lambda s: s._done, timeout)

    def events(self, kind: str | None = None) -> list[dict]:
        """The JSON of every domain event frame (not control events or comments)."""
        with self._cond:
            return [e for e in self._events if kind is None or e["type"] == kind]

    def ids(self) -> list[int]:
        with self._cond:
            return [e["id"] for e in self._events]

    def has_ids(self, ids: list[int]) -> Callable[[Stream], bool]:
        wanted = set(ids)

        def predicate(stream: Stream) -> bool:
            return wanted <= stream._seen

        return predicate

    def last_id(self) -> str | None:
        with self._cond:
            return next((f.id for f in reversed(self.frames) if f.id is not None), None)

    _socket: socket.socket | None = None

    def close(self) -> None:
        """Disconnect, as a browser closing the page does."""
        self._stop.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._client.close()
        self._thread.join(10)


def raw_stream_socket(base_url: str, cookies: dict, path: str = "/events/", rcvbuf: int = 4096):
    """A plain socket with a GET for an SSE stream sent and a small receive buffer, for
    tests that stop reading (a stalled client)."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    return sock
