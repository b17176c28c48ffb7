"""Our own load client: thousands of real SSE connections (and polling dashboards) over
loopback, on raw asyncio transports (an httpx client per stream would cost more than the
server we measure).

Each stream is one `SSEProtocol`: it sends a plain HTTP/1.1 GET with the session cookie,
checks the status line, then scans what arrives for event ids (`data: {"id": N` of the
contract JSON, which django-eventstream's frames carry too) and titles, stamping each
chunk with time.time() on arrival. Receipt times go into one array per event id, so 10k
streams x thousands of events stay a few bytes per delivery.
"""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field

EVENT_ID = re.compile(rb'data: ?\{"id": ?(\d+)')
TITLE = re.compile(rb"bench-act-(\d+)")


def _arrays() -> defaultdict[int, array]:
    return defaultdict(lambda: array("d"))


@dataclass
class Receipts:
    """What every stream of one run received."""

    by_event: defaultdict[int, array] = field(default_factory=_arrays)
    by_title: defaultdict[int, array] = field(default_factory=_arrays)
    bytes: int = 0
    chunks: int = 0
    track_titles: bool = False

    def clear(self) -> None:
        self.by_event.clear()
        self.by_title.clear()
        self.bytes = 0
        self.chunks = 0


class SSEProtocol(asyncio.Protocol):
    def __init__(self, request: bytes, receipts: Receipts, opened: asyncio.Future) -> None:
        self.request = request
        self.receipts = receipts
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.tail = b""
        self.in_body = False
        self.closed = asyncio.get_running_loop().create_future()
        self.seen_titles: set[int] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        receipts = self.receipts
        receipts.bytes += len(data)
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                if not self.opened.done():
                    self.opened.set_exception(RuntimeError(f"stream refused: {status!r}"))
                self.transport.close()
                return
            self.in_body = True
            data = self.head[end + 4 :]
            self.head = b""
            if not self.opened.done():
                self.opened.set_result(now)
        receipts.chunks += 1
        # A frame can straddle two chunks: scan from the last frame boundary on.
        buf = self.tail + data if self.tail else data
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self.tail = buf
            return
        self.tail = buf[cut + 2 :]
        scan = buf[: cut + 2]
        by_event = receipts.by_event
        for match in EVENT_ID.findall(scan):
            by_event[int(match)].append(now)
        if receipts.track_titles:
            for match in TITLE.findall(scan):
                n = int(match)
                if n not in self.seen_titles:
                    self.seen_titles.add(n)
                    receipts.by_title[n].append(now)

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"stream closed before its headers: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def get_request(
    path: str, cookie: str, *, accept: str = "text/event-stream", extra: str = ""
) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
        f"Cookie: {cookie}\r\nCache-Control: no-cache\r\n{extra}\r\n"
    ).encode()


async def open_streams(
    n: int,
    *,
    port: int,
    path: str,
    cookie: str,
    receipts: Receipts,
    concurrency: int = 200,
    timeout: float = 120.0,
) -> tuple[list[SSEProtocol], float, int]:
    """Open n streams, at most `concurrency` connecting at once; (streams, seconds, failures)."""
    loop = asyncio.get_running_loop()
    request = get_request(path, cookie)
    streams: list[SSEProtocol] = []
    failures = 0
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        nonlocal failures
        async with gate:
            opened = loop.create_future()
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: SSEProtocol(request, receipts, opened), "127.0.0.1", port
                    ),
                    timeout,
                )
                streams.append(proto)
                await asyncio.wait_for(opened, timeout)
            except (OSError, RuntimeError, TimeoutError):
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return streams, time.perf_counter() - start, failures


async def close_streams(streams: list[SSEProtocol], timeout: float = 30.0) -> None:
    for stream in streams:
        stream.close()
    waits = [s.closed for s in streams]
    if waits:
        await asyncio.wait(waits, timeout=timeout)


# -- polling dashboards ------------------------------------------------------------------


@dataclass
class PollStats:
    requests: int = 0
    errors: int = 0
    error_kinds: Counter = field(default_factory=Counter)
    bytes: int = 0
    by_title: defaultdict[int, array] = field(default_factory=_arrays)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.read()
    return status, body, len(head) + len(body)


async def poll_dashboards(
    n: int,
    *,
    port: int,
    path: str,
    cookie: str,
    interval: float,
    duration: float,
    stats: PollStats,
) -> None:
    """n keep-alive clients, each GETting `path` (an htmx request) every `interval`
    seconds, phases spread evenly, for `duration` seconds."""
    request = get_request(path, cookie, accept="text/html", extra="HX-Request: true\r\n")
    end = time.perf_counter() + duration

    async def one(k: int) -> None:
        reader = writer = None
        seen: set[int] = set()
        next_at = time.perf_counter() + interval * k / n
        while next_at < end:
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # like htmx's `every 2s`: a poll that came back late is not made up for
            next_at = max(next_at + interval, time.perf_counter())
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                left = max(1.0, end + interval - time.perf_counter())
                status, body, size = await asyncio.wait_for(_read_response(reader), left)
                now = time.time()
                stats.requests += 1
                stats.bytes += size
                if status != 200:
                    stats.errors += 1
                    stats.error_kinds[f"HTTP {status}"] += 1
                    continue
                for match in TITLE.findall(body):
                    t = int(match)
                    if t not in seen:
                        seen.add(t)
                        stats.by_title[t].append(now)
            except (
                OSError,
                asyncio.IncompleteReadError,
                ValueError,
                IndexError,
                TimeoutError,
            ) as exc:
                # a keep-alive connection the server closed: count it, reconnect next time
                stats.errors += 1
                stats.error_kinds[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(one(k) for k in range(n)))
