"""A small spec-conformant SSE client for tests: real sockets, real HTTP, no mocks.

`SSEParser` follows the WHATWG event-stream rules (lines end at CRLF, CR or LF; a
leading space after the colon is dropped; data lines join with LF; an `id:` field sets
the last event id when its frame ends, even a frame with no data; comments kept for
the heartbeat tests). `Stream` reads one /events/ response in a background thread and
lets a test wait for a condition with a timeout (never a sleep); `follow` reconnects
after each `end` with the id a browser would resend.
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
    def __init__(self, last_event_id: str = "") -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._comments: list[str] = []
        self.retry: int | None = None
        # WHATWG: the `id:` field sets the last event ID *buffer*; the blank line that
        # ends the frame copies it into the last event ID (what a reconnect resends),
        # whether or not the frame had data. The buffer is never cleared by a frame, and
        # a reconnection starts from the id it resent (as Chromium and eventsource do).
        self._id_buffer = last_event_id
        self.last_event_id = last_event_id

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
            self._id_buffer = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
            self.retry = int(value)
        return None

    def _dispatch(self) -> Frame | None:
        self.last_event_id = self._id_buffer
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
        cond: threading.Condition | None = None,
    ) -> None:
        self.frames: list[Frame] = []
        self._events: list[dict] = []
        self._seen: set[int] = set()
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self.body = b""
        self.error: BaseException | None = None
        self.closed_by_server = False
        self._cond = cond if cond is not None else threading.Condition()
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=base_url, cookies=cookies, timeout=None)
        self._request = self._client.build_request("GET", path, params=params, headers=headers)
        self._parser = SSEParser(last_event_id=(headers or {}).get("Last-Event-ID", ""))
        self._last_event_id = self._parser.last_event_id
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        parser = self._parser
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
                            self._last_event_id = parser.last_event_id
                            self._events.extend(parsed)
                            self._seen.update(e["id"] for e in parsed)
                            self._cond.notify_all()
                self.closed_by_server = True
            finally:
                response.close()
        except BaseException as exc:  # reported to the test
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

    @property
    def last_event_id(self) -> str:
        """What a WHATWG EventSource would send as Last-Event-ID on its reconnection."""
        with self._cond:
            return self._last_event_id

    _socket: socket.socket | None = None

    def close(self) -> None:
        """Disconnect, as a browser closing the page does."""
        self._stop.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self._client.close()
        self._thread.join(10)


class Follower:
    """Follows a stream as a WHATWG EventSource does, in a background thread: when the
    server ends a response (`end`), it reconnects with `Last-Event-ID` set to the last
    event id it was given (none if it was never given one). It reconnects at once rather
    than after `retry:`; a test makes its own gaps. A failed connection ends it."""

    def __init__(
        self,
        base_url: str,
        path: str = "/events/",
        *,
        cookies: dict | None = None,
        params: dict | None = None,
        last_event_id: str = "",
    ) -> None:
        self.base_url, self.path, self.cookies, self.params = base_url, path, cookies, params
        self.streams: list[Stream] = []
        self.error: str | None = None
        self._last_event_id = last_event_id
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            last = self._last_event_id
            stream = Stream(
                self.base_url,
                self.path,
                cookies=self.cookies,
                params=self.params,
                headers={"Last-Event-ID": last} if last else None,
                cond=self._cond,
            )
            with self._cond:
                self.streams.append(stream)
                self._cond.notify_all()
                while not stream._done and not self._stop.is_set():
                    self._cond.wait()
                if self._stop.is_set():
                    return
                if stream.error is not None or stream.status != 200 or not stream.closed_by_server:
                    self.error = f"connection {len(self.streams)} failed: {stream.error!r}"
                    self._cond.notify_all()
                    return
                self._last_event_id = stream.last_event_id

    def ids(self) -> list[int]:
        """The ids of every domain event received, over all connections, in order."""
        with self._cond:
            return [i for stream in self.streams for i in (e["id"] for e in stream._events)]

    def ends(self) -> int:
        with self._cond:
            return sum(1 for stream in self.streams if stream.closed_by_server)

    def resent_ids(self) -> list[str]:
        """The Last-Event-ID each connection was opened with ("" for none)."""
        with self._cond:
            return [s._request.headers.get("Last-Event-ID", "") for s in self.streams]

    def wait(self, predicate: Callable[[Follower], bool], timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = end - time.monotonic()
                if self.error is not None or left <= 0:
                    raise AssertionError(
                        f"condition not met ({self.error or 'timeout'}) after "
                        f"{len(self.streams)} connections: ids {self.ids()[-10:]}"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            streams = list(self.streams)
        for stream in streams:
            stream.close()
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
