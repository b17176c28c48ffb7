"""Phases `burst` and `storm` (issue 11): N streams opened at once, as after a restart
or a deploy, then all of them dropped and reopened at once with Last-Event-ID.

    uv run --group bench python -m bench.run --only storm [--quick]

`burst`: N streams (10,000; 1,000 with --quick), each following `execution.*,step.*`,
connect in the same instant. Figures: all answered (status 200 and headers)?, seconds
until the last one answered, the server's CPU per open (utime+stime from /proc of the
server pid, over the burst and 3 s after) and its RSS per stream 3 s after the burst
((RSS after - RSS before) / N).

`storm` (the burst first, then): each stream is given a few events, so that it has a
Last-Event-ID; all are closed; events are committed meanwhile; all reconnect at once with
their own last `id:` as Last-Event-ID. Figures: CPU per reopen, seconds until every
stream answered and received every matching event after its id, events lost and events
received twice (or at or below the id it resumed after).

Each server runs three request paths, in the same run, one after the other:
`main` (EVENTS_LEAN_STREAMS=0, EVENTS_MEMORY_CATCH_UP=0: the request path of main, the
baseline), `lean` (Django's lean request path for streams) and `lean+memory` (plus the
catch-up from the hub's recent events). Ratios are against `main` of the same server.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from array import array
from typing import TYPE_CHECKING, Any

from bench import client

if TYPE_CHECKING:
    from bench.run import Bench

PATH = "/events/?type=execution.*,step.*"
CONFIGS: list[tuple[str, dict[str, str]]] = [
    ("main", {"EVENTS_LEAN_STREAMS": "0", "EVENTS_MEMORY_CATCH_UP": "0"}),
    ("lean", {"EVENTS_LEAN_STREAMS": "1", "EVENTS_MEMORY_CATCH_UP": "0"}),
    ("lean+memory", {"EVENTS_LEAN_STREAMS": "1", "EVENTS_MEMORY_CATCH_UP": "2048"}),
]
SETTLE = 3.0  # seconds after the burst before RSS and CPU are read
ID_LINE = re.compile(rb"^id: (\d+)$", re.M)


class Stream(asyncio.Protocol):
    """One SSE connection that keeps the ids it received and the last `id:` it saw."""

    def __init__(self, request: bytes, opened: asyncio.Future[float]) -> None:
        self.request = request
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.tail = b""
        self.in_body = False
        self.last_id = -1  # the last `id:` field: what a browser resends
        self.ids = array("q")  # data ids of the events received
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                if not self.opened.done():
                    self.opened.set_exception(RuntimeError(f"refused: {status!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.in_body = True
            data = self.head[end + 4 :]
            self.head = b""
            if not self.opened.done():
                self.opened.set_result(time.perf_counter())
        buf = self.tail + data if self.tail else data
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self.tail = buf
            return
        self.tail = buf[cut + 2 :]
        scan = buf[: cut + 2]
        for match in client.EVENT_ID.findall(scan):
            self.ids.append(int(match))
        ids = ID_LINE.findall(scan)
        if ids:
            self.last_id = int(ids[-1])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"closed before its headers: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)


async def open_at_once(
    port: int, cookie: str, resume: list[int] | None, n: int, timeout: float
) -> tuple[list[Stream], float, int]:
    """n streams connecting in the same instant (the i-th with Last-Event-ID resume[i]);
    (streams, seconds until the last answered, failures)."""
    loop = asyncio.get_running_loop()
    streams: list[Stream] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        extra = f"Last-Event-ID: {resume[i]}\r\n" if resume is not None else ""
        request = client.get_request(PATH, cookie, extra=extra)
        opened: asyncio.Future[float] = loop.create_future()
        try:
            _, stream = await asyncio.wait_for(
                loop.create_connection(lambda: Stream(request, opened), "127.0.0.1", port),
                timeout,
            )
            streams.append(stream)
            await asyncio.wait_for(opened, timeout)
        except (OSError, RuntimeError, TimeoutError):
            failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return streams, time.perf_counter() - start, failures


async def close_all(streams: list[Stream]) -> None:
    for stream in streams:
        if stream.transport is not None:
            stream.transport.close()
    if streams:
        await asyncio.wait([s.closed for s in streams], timeout=30)


async def wait_until(done: Any, timeout: float) -> float:
    start = time.perf_counter()
    while not done() and time.perf_counter() - start < timeout:
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


def _execution_ids(produced: dict) -> list[int]:
    return sorted(e[0] for e in produced["events"] if e[2].startswith(("execution.", "step.")))


async def _burst(bench: Bench, server: Any, n: int, timeout: float) -> tuple[dict, list[Stream]]:
    await asyncio.sleep(1.0)  # the warm-up's streams gone
    rss0, cpu0 = server.rss_kb(), server.cpu()
    streams, seconds, failures = await open_at_once(server.port, bench.cookie, None, n, timeout)
    await asyncio.sleep(SETTLE)
    rss1, cpu1 = server.rss_kb(), server.cpu()
    answered = n - failures
    return {
        "streams": n,
        "answered": answered,
        "all_answered": failures == 0,
        "open_seconds": seconds,
        "cpu_ms_per_open": (cpu1 - cpu0) * 1000 / max(1, answered),
        "rss_before_kb": rss0,
        "rss_after_kb": rss1,
        "kb_per_stream": (rss1 - rss0) / max(1, answered),
    }, streams


async def _storm(bench: Bench, server: Any, streams: list[Stream], timeout: float) -> dict:
    n = len(streams)
    # A few events while connected: every stream then has an id of its own to resume from.
    given = _execution_ids(
        await bench.produce(server, "memory", {"kind": "transition", "rate": 0, "count": 20})
    )
    await wait_until(lambda: all(s.last_id >= given[-1] for s in streams), 60)
    resume = [s.last_id for s in streams]
    await close_all(streams)
    await asyncio.sleep(1.0)  # the server notices the disconnects
    # Committed while every stream is away: what each must catch up on.
    missed = _execution_ids(
        await bench.produce(server, "memory", {"kind": "transition", "rate": 0, "count": 100})
    )
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    again, open_seconds, failures = await open_at_once(
        server.port, bench.cookie, resume, n, timeout
    )
    # `again` is in connection order, not request order: pair each with its resume id.
    by_request = {id(s): r for s, r in zip(again, _resume_of(again, resume), strict=True)}

    def caught_up() -> bool:
        return all(len(s.ids) >= sum(1 for e in missed if e > by_request[id(s)]) for s in again)

    await wait_until(caught_up, timeout)
    caught_seconds = time.perf_counter() - t0
    await asyncio.sleep(0.5)  # anything sent twice arrives now
    cpu1 = server.cpu()
    lost = duplicated = 0
    for stream in again:
        after = by_request[id(stream)]
        expected = {e for e in missed if e > after}
        got = list(stream.ids)
        unique = set(got)
        lost += len(expected - unique)
        duplicated += len(got) - len(unique) + sum(1 for e in unique if e <= after)
    await close_all(again)
    return {
        "reopened": n - failures,
        "all_reopened": failures == 0,
        "events_missed_while_away": len(missed),
        "reopen_seconds": open_seconds,
        "caught_up_seconds": caught_seconds,
        "cpu_ms_per_reopen": (cpu1 - cpu0) * 1000 / max(1, n - failures),
        "lost": lost,
        "duplicated": duplicated,
    }


def _resume_of(again: list[Stream], resume: list[int]) -> list[int]:
    """The resume id each reopened stream sent (it is in its request)."""
    found = []
    for stream in again:
        text = stream.request.split(b"Last-Event-ID: ", 1)[1].split(b"\r\n", 1)[0]
        found.append(int(text))
    return found


def _run(bench: Bench, with_storm: bool) -> list[dict]:
    from bench.run import LOG, arun

    n = 1000 if bench.quick else 10000
    timeout = 60.0 if bench.quick else 120.0
    rows = []
    chosen = os.environ.get("BENCH_BURST_PATHS")  # a comma list of CONFIGS names
    for kind in ("daphne", "uvicorn"):
        for name, env in CONFIGS:
            if chosen is not None and name not in chosen.split(","):
                continue
            if bench.quick and name == "lean" and with_storm and chosen is None:
                continue  # quick mode: the baseline and the final path only (<= 90 s)
            with bench.server(kind, "memory", env=env) as server:

                async def run() -> dict:
                    row, streams = await _burst(bench, server, n, timeout)
                    if with_storm:
                        row.update(await _storm(bench, server, streams, timeout))
                    else:
                        await close_all(streams)
                    return row

                row = {"server": kind, "path": name, **arun(run())}
                shown = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
                LOG(f"  {shown}")
                rows.append(row)
    for row in rows:
        base = next((r for r in rows if r["server"] == row["server"] and r["path"] == "main"), {})
        for key in ("cpu_ms_per_open", "kb_per_stream", "cpu_ms_per_reopen"):
            if key in row and base.get(key):
                row[f"{key}_ratio"] = row[key] / base[key]
    return rows


def burst(bench: Bench) -> None:
    bench.results["burst"] = _run(bench, with_storm=False)


def storm(bench: Bench) -> None:
    bench.results["storm"] = _run(bench, with_storm=True)
