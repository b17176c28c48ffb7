"""Run the benchmarks and write their results.

    uv run --group bench python -m bench.run            # the full run (10,000-stream phases)
    uv run --group bench python -m bench.run --quick    # smaller figures (9.5 minutes here)
    ... --only overhead,capacity,throughput,polling,eventstream,loglines,burst,storm
    (a subset; bench/fanout.py, bench/multiproc.py and bench/publish_cost.py run alone)
    ... --profile                     # py-spy the 10k-stream runs of the capacity phase

Everything runs against real servers (daphne with a 4096 backlog, uvicorn) on
127.0.0.1, a fresh SQLite database under var/bench/, the in-memory layer and Redis at
127.0.0.1:6379 (a unique CHANNEL_LAYER_PREFIX per run). Every run stops by itself: each
phase has a fixed duration and a bounded drain. Results: bench/results/<stamp>.json, the
tables in docs/benchmarks.md (between the results markers) and the plots docs/bench-*.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from bench import burst, client, djangoside, procs

ROOT = procs.ROOT
RESULTS = ROOT / "bench" / "results"
REDIS_URL = "redis://127.0.0.1:6379/0"
STREAM_PATH = "/events/"
LOG = print


_LOOP: asyncio.AbstractEventLoop | None = None


def arun(coro):
    """Run `coro` on the bench's one event loop (uvloop when installed: uvicorn[standard]
    brings it), so streams opened in one step stay open for the next."""
    global _LOOP
    if _LOOP is None:
        try:
            import uvloop

            _LOOP = uvloop.new_event_loop()
        except ImportError:
            _LOOP = asyncio.new_event_loop()
        asyncio.set_event_loop(_LOOP)
    return _LOOP.run_until_complete(coro)


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


class Bench:
    def __init__(self, quick: bool, profile: bool) -> None:
        self.quick = quick
        self.profile = profile
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.dir = ROOT / "var" / "bench" / self.stamp
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / "bench.sqlite3"
        self.prefix = f"bench-{uuid.uuid4().hex[:10]}"
        self.redis = redis_up()
        self.results: dict = {
            "stamp": self.stamp,
            "quick": quick,
            "machine": procs.machine(),
            "redis": self.redis,
            "notes": [],
        }
        self.cookie = ""
        self.execution_ids: list[int] = []
        self.task_ids: list[int] = []
        self.offset = 0  # titles of created tasks stay unique across phases

    # -- environment -----------------------------------------------------------------

    def env(self, *, layer: str = "memory", settings: str = "bench.settings", **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DEBUG"}}
        env.update(
            DJANGO_SETTINGS_MODULE=settings,
            SECRET_KEY="bench-only-secret-key",
            DATABASE_URL=f"sqlite:///{self.db}",
            EVENTS_MAX_STREAMS_PER_USER="1000000",
            EVENTS_STREAM_MAX_SECONDS="3600",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(ROOT),
        )
        if layer == "redis":
            env.update(REDIS_URL=REDIS_URL, CHANNEL_LAYER_PREFIX=self.prefix)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def setup(self) -> None:
        tasks = 100
        LOG(f"setup: database {self.db}, {tasks} tasks with running executions")
        env = self.env(settings="bench.es_settings")
        out = procs.djangoside(env, "setup", "--tasks", str(tasks))
        self.execution_ids = out["execution_ids"]
        self.task_ids = out["task_ids"]

    def server(self, kind: str, layer: str, **kw) -> procs.Server:
        server = procs.Server(kind, self.env(layer=layer, **kw.pop("env", {})), **kw).start()
        if not self.cookie:
            self.cookie = procs.login_cookie(
                server.url, djangoside.BENCH_USER, djangoside.BENCH_PASSWORD
            )
        # one warm-up stream and page, so imports and first-request work are not counted
        arun(self._warm(server))
        return server

    async def _warm(self, server: procs.Server) -> None:
        receipts = client.Receipts()
        streams, _, failures = await client.open_streams(
            2, port=server.port, path=STREAM_PATH, cookie=self.cookie, receipts=receipts
        )
        await client.close_streams(streams)
        if failures:
            LOG(f"  warning: {failures} warm-up stream(s) refused on {server.kind}")

    # -- producing ---------------------------------------------------------------------

    async def produce(self, server: procs.Server, layer: str, spec: dict) -> dict:
        """Run the producer in the server (in-memory layer) or a separate process (Redis)."""
        spec = {"execution_ids": self.execution_ids, **spec}
        if spec["kind"] == "create":
            spec.setdefault("offset", self.offset)
            self.offset += spec["count"]
        budget = 60 + spec["count"] / max(spec["rate"], 1) * 3
        if layer == "redis":
            producer = procs.Producer(self.env(layer="redis"), spec)
            return await asyncio.to_thread(producer.result, budget)
        async with httpx.AsyncClient(timeout=budget) as http:
            response = await http.post(f"{server.url}/__bench__/produce", json=spec)
            response.raise_for_status()
            return response.json()

    # -- measuring ---------------------------------------------------------------------

    @staticmethod
    async def drain(
        receipts: client.Receipts, expected: int, timeout: float, quiet: float = 3.0
    ) -> float:
        """Wait until `expected` deliveries arrived, or nothing arrived for `quiet`
        seconds, or `timeout` passed; what is missing then counts as not delivered."""
        start = time.perf_counter()
        last, still = -1, time.perf_counter()
        while time.perf_counter() - start < timeout:
            got = sum(len(a) for a in receipts.by_event.values())
            if got >= expected:
                break
            if got != last:
                last, still = got, time.perf_counter()
            elif time.perf_counter() - still > quiet:
                break
            await asyncio.sleep(0.1)
        return time.perf_counter() - start

    @staticmethod
    def latency(events: list, by: dict, expect: Callable[[str, int | None], int]) -> dict:
        """Delivery latency from commit to receipt, over every expected delivery."""
        parts, expected, got = [], 0, 0
        for event_id, committed, type_, _title, task_id in events:
            n = expect(type_, task_id)
            if not n:
                continue
            expected += n
            arr = by.get(event_id)
            if arr:
                got += min(len(arr), n)
                parts.append(np.frombuffer(arr, dtype="d") - committed)
        if not parts:
            return {"expected": expected, "delivered": 0, "lost": expected}
        ms = np.concatenate(parts) * 1000.0
        return {
            "expected": expected,
            "delivered": got,
            "lost": expected - got,
            "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()),
        }

    # -- 1, 2 and 3: streams held, latency, throughput ------------------------------------

    def combos(self) -> list[tuple[str, str]]:
        combos = [("daphne", "memory"), ("uvicorn", "memory")]
        if self.redis:
            combos += [("daphne", "redis"), ("uvicorn", "redis")]
        return combos

    async def _open_more(self, server, held: dict, n: int, *, by_task: bool, path: str) -> float:
        """Grow the set of open streams in `held` to n; the seconds it took."""
        receipts = held.setdefault("receipts", client.Receipts())
        opened = held.setdefault("streams", [])
        per_task = held.setdefault("per_task", {})
        held.setdefault("failures", 0)
        todo = n - len(opened)
        if todo <= 0:
            return 0.0
        if not by_task:
            streams, secs, failures = await client.open_streams(
                todo, port=server.port, path=path, cookie=self.cookie, receipts=receipts
            )
        else:
            # each stream follows one task: spread evenly over the tasks the producer flips
            counts: dict[int, int] = {}
            for k in range(len(opened), n):
                task = self.task_ids[k % len(self.task_ids)]
                counts[task] = counts.get(task, 0) + 1
            streams, secs, failures = [], 0.0, 0
            for task, count in counts.items():
                s, t, f = await client.open_streams(
                    count, port=server.port, path=f"{path}&task={task}", cookie=self.cookie,
                    receipts=receipts,
                )  # fmt: skip
                streams += s
                secs += t
                failures += f
                per_task[task] = per_task.get(task, 0) + count - f
        opened += streams
        held["failures"] += failures
        return secs

    async def _measure(
        self, server, layer: str, held: dict, *, rate: float, seconds: float, by_task: bool,
        label: str, profile_to: Path | None = None,
    ) -> dict:  # fmt: skip
        """Transitions at `rate` for `seconds` against the streams in `held`: latency of
        every expected delivery, deliveries/s, the server's CPU and queries."""
        receipts: client.Receipts = held["receipts"]
        live = len(held["streams"]) - held["failures"]
        per_task = held["per_task"]
        receipts.by_event.clear()
        count = max(1, int(rate * seconds))
        spy = None
        if profile_to is not None:
            spy = subprocess.Popen(
                ["py-spy", "record", "-p", str(server.pid), "-d", str(int(seconds) + 3),
                 "-r", "50", "--gil", "-f", "raw", "-o", str(profile_to), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        cpu0, q0 = server.cpu(), server.stats()["queries"]
        t0 = time.perf_counter()
        produced = await self.produce(
            server, layer, {"kind": "transition", "rate": rate, "count": count}
        )
        events = produced["events"]

        def expect(type_: str, task_id: int | None) -> int:
            if type_ != "execution.status":
                return 0
            return per_task.get(task_id, 0) if by_task else live

        expected = sum(expect(e[2], e[4]) for e in events)
        drain = await self.drain(receipts, expected, timeout=max(20.0, seconds * 3))
        wall = time.perf_counter() - t0
        cpu1, q1 = server.cpu(), server.stats()["queries"]
        if spy is not None:
            try:
                spy.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
        stats = self.latency(events, receipts.by_event, expect)
        receipts.by_event.clear()
        row = {
            "server": server.kind,
            "layer": layer,
            "streams": live,
            "filter": label,
            "rate_target": rate,
            "rate_achieved": produced["rate"],
            "transitions": count,
            "drain_seconds": drain,
            "deliveries_per_s": stats.get("delivered", 0) / max(wall, 1e-9),
            "server_cpu_s": cpu1 - cpu0,
            "wall_s": wall,
            "server_queries": q1 - q0,
            **stats,
        }
        shown = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()}
        LOG(f"  latency: {shown}")
        return row

    def capacity(self) -> None:
        """Streams held (1k, 5k, 10k): time to open, RSS per stream, and at each size the
        delivery latency under 100 transitions/s, each stream following one task."""
        sizes = [500, 2000] if self.quick else [1000, 5000, 10000]
        seconds = 4 if self.quick else 8
        cap_rows, lat_rows = [], []
        for kind, layer in self.combos():
            top = sizes if layer == "memory" or self.quick else sizes[:2]
            with self.server(kind, layer) as server:
                base = server.rss_kb()
                held: dict = {}
                total = 0.0
                for n in top:
                    total += arun(self._open_more(
                        server, held, n, by_task=True, path="/events/?type=execution.status"
                    ))  # fmt: skip
                    time.sleep(2.0)  # let the server settle before reading RSS
                    live = len(held["streams"]) - held["failures"]
                    rss = server.rss_kb()
                    row = {
                        "server": kind, "layer": layer, "mode": "stream", "streams": live,
                        "target": n, "failures": held["failures"], "open_seconds": total,
                        "rss_base_kb": base, "rss_kb": rss,
                        "kb_per_stream": (rss - base) / max(1, live),
                    }  # fmt: skip
                    LOG(f"  capacity: {row}")
                    cap_rows.append(row)
                    profile_to = None
                    if self.profile and n >= 10000:
                        profile_to = RESULTS / f"profile-{self.stamp}-{kind}-{layer}-{n}-task.txt"
                    # a separate producer process on Redis commits ~25-50/s (see section 6):
                    # fewer transitions keep the run bounded
                    secs = seconds if layer == "memory" else seconds / 2
                    lat_rows.append(arun(self._measure(
                        server, layer, held, rate=100.0, seconds=secs, by_task=True,
                        label="one task per stream", profile_to=profile_to,
                    )))  # fmt: skip
                    if held["failures"]:
                        break
                arun(client.close_streams(held["streams"]))
            if layer == "memory":
                # the baseline: as many idle keep-alive HTTP connections to the same server
                with self.server(kind, layer) as server:
                    cap_rows += arun(self._idle_connections(server, layer, top))
        self.results["capacity"] = cap_rows
        self.results["latency"] = lat_rows

    async def _idle_connections(self, server, layer: str, sizes) -> list[dict]:
        receipts = client.Receipts()
        base = server.rss_kb()
        opened: list = []
        rows = []
        total = 0.0
        for n in sizes:
            streams, secs, failures = await client.open_streams(
                n - len(opened), port=server.port, path="/__bench__/stats", cookie=self.cookie,
                receipts=receipts,
            )  # fmt: skip
            opened += streams
            total += secs
            await asyncio.sleep(2.0)
            rss = server.rss_kb()
            rows.append({
                "server": server.kind, "layer": layer, "mode": "idle keep-alive",
                "streams": len(opened) - failures, "target": n, "failures": failures,
                "open_seconds": total, "rss_base_kb": base, "rss_kb": rss,
                "kb_per_stream": (rss - base) / max(1, len(opened) - failures),
            })  # fmt: skip
        await client.close_streams(opened)
        return rows

    def throughput(self) -> None:
        """Firehose streams (every stream gets every transition): the rate raised step by
        step until latency runs away; 1k streams, and 10k at low rates (in-memory)."""
        seconds = 4 if self.quick else 6
        plans = [(1000, [25, 50, 100, 200] if self.quick else [25, 50, 75, 100, 150, 200, 300])]
        rows = []
        for kind, layer in self.combos():
            todo = list(plans)
            if not self.quick and (kind, layer) == ("uvicorn", "memory"):
                todo.append((10000, [2, 5, 10]))
            with self.server(kind, layer) as server:
                for streams, rates in todo:
                    held: dict = {}
                    arun(self._open_more(
                        server, held, streams, by_task=False, path="/events/?type=execution.status"
                    ))  # fmt: skip
                    time.sleep(1.0)
                    for rate in rates:
                        row = arun(self._measure(
                            server, layer, held, rate=rate, seconds=seconds, by_task=False,
                            label="firehose (every transition)",
                        ))  # fmt: skip
                        rows.append(row)
                        if (
                            row.get("p99_ms", 1e9) > 1000
                            or row.get("lost", 0)
                            or (row["rate_achieved"] < rate * 0.8)
                        ):
                            break  # latency ran away, or the producer could not keep up
                    arun(client.close_streams(held["streams"]))
        self.results["throughput"] = rows

    # -- 4. push against polling -------------------------------------------------------

    def polling(self) -> None:
        dashboards = 500
        seconds = 20 if self.quick else 30
        activity = 1.0  # tasks created per second, the same in both runs
        layer = "redis" if self.redis else "memory"
        rows = []
        for kind in ("daphne", "uvicorn") if not self.quick else ("daphne",):
            with self.server(kind, layer) as server:
                rows.append(arun(self._poll(server, layer, dashboards, seconds, activity)))
                for path in self._push_paths(server):
                    rows.append(
                        arun(self._push(server, layer, dashboards, seconds, activity, path))
                    )
                rows.append(arun(self._idle(server, dashboards, 15 if not self.quick else 8)))
        self.results["polling"] = rows

    def _fragment_path(self) -> str:
        return os.environ.get("BENCH_FRAGMENT_PATH", "/")

    @staticmethod
    def staleness(events: list, by_title: dict, clients: int) -> dict:
        committed = {int(title.rsplit("-", 1)[1]): t for _, t, type_, title, _ in events
                     if type_ == "task.created" and title}  # fmt: skip
        parts, expected, got = [], 0, 0
        for n, t in committed.items():
            expected += clients
            arr = by_title.get(n)
            if arr:
                got += len(arr)
                parts.append(np.frombuffer(arr, dtype="d") - t)
        if not parts:
            return {"changes": len(committed), "seen": 0, "expected": expected}
        ms = np.concatenate(parts) * 1000.0
        return {
            "changes": len(committed),
            "seen": got,
            "expected": expected,
            "staleness_p50_ms": float(np.percentile(ms, 50)),
            "staleness_p99_ms": float(np.percentile(ms, 99)),
            "staleness_max_ms": float(ms.max()),
        }

    async def _poll(self, server, layer, dashboards, seconds, activity) -> dict:
        stats = client.PollStats()
        cpu0, q0 = server.cpu(), server.stats()["queries"]
        t0 = time.perf_counter()
        poll = asyncio.ensure_future(
            client.poll_dashboards(
                dashboards, port=server.port, path=self._fragment_path(), cookie=self.cookie,
                interval=2.0, duration=seconds, stats=stats,
            )
        )  # fmt: skip
        await asyncio.sleep(2.0)  # every dashboard has its first page
        spec = {"kind": "create", "rate": activity, "count": int(activity * (seconds - 5))}
        produced = await self.produce(server, layer, spec)
        await poll
        wall = time.perf_counter() - t0
        cpu1, q1 = server.cpu(), server.stats()["queries"]
        row = {
            "server": server.kind, "layer": layer, "mode": "polling every 2 s",
            "path": self._fragment_path(), "clients": dashboards, "wall_s": wall,
            "server_cpu_s": cpu1 - cpu0, "server_queries": q1 - q0,
            "requests": stats.requests, "errors": stats.errors, "bytes": stats.bytes,
            "error_kinds": dict(stats.error_kinds),
            **self.staleness(produced["events"], stats.by_title, dashboards),
        }  # fmt: skip
        # One process may not serve every poll; what serving all of them would cost:
        # timed-out polls are not in stats.requests; non-200 answers are
        http_errors = sum(n for k, n in stats.error_kinds.items() if k.startswith("HTTP"))
        served = max(1, stats.requests - http_errors)
        row["offered"] = int(dashboards * seconds / 2.0)
        row["served"] = served
        row["cpu_ms_per_poll"] = 1000 * row["server_cpu_s"] / served
        row["queries_per_poll"] = row["server_queries"] / served
        row["cpu_s_to_serve_all"] = row["cpu_ms_per_poll"] * row["offered"] / 1000
        LOG(f"  polling: {row}")
        return row

    def _push_paths(self, server: procs.Server) -> list[str]:
        """The dashboard's own fragment stream (as its pages open it: resuming from the
        id the page was rendered at) when it exists, and the JSON stream."""
        paths = []
        last = httpx.get(f"{server.url}/__bench__/last_event_id", timeout=30).json()["id"]
        if self._has_route(server, "/stream/"):
            paths.append(f"/stream/?last_event_id={last}")
        paths.append(STREAM_PATH)
        return paths

    def _has_route(self, server: procs.Server, path: str) -> bool:
        async def check() -> bool:
            receipts = client.Receipts()
            streams, _, failures = await client.open_streams(
                1, port=server.port, path=path, cookie=self.cookie, receipts=receipts, timeout=10
            )
            await client.close_streams(streams)
            return not failures

        return arun(check())

    async def _push(self, server, layer, dashboards, seconds, activity, path) -> dict:
        receipts = client.Receipts(track_titles=True)
        streams, open_secs, failures = await client.open_streams(
            dashboards, port=server.port, path=path, cookie=self.cookie, receipts=receipts
        )
        await asyncio.sleep(1.0)
        receipts.bytes = 0
        cpu0, q0 = server.cpu(), server.stats()["queries"]
        t0 = time.perf_counter()
        spec = {"kind": "create", "rate": activity, "count": int(activity * (seconds - 5))}
        produced = await self.produce(server, layer, spec)
        # the same wall time as the polling run
        await asyncio.sleep(max(0.0, seconds - (time.perf_counter() - t0)))
        wall = time.perf_counter() - t0
        cpu1, q1 = server.cpu(), server.stats()["queries"]
        await client.close_streams(streams)
        row = {
            "server": server.kind, "layer": layer, "mode": "SSE stream",
            "path": path.split("?")[0], "clients": len(streams) - failures, "wall_s": wall,
            "server_cpu_s": cpu1 - cpu0, "server_queries": q1 - q0,
            "requests": len(streams), "errors": failures, "bytes": receipts.bytes,
            **self.staleness(produced["events"], receipts.by_title, len(streams) - failures),
        }  # fmt: skip
        LOG(f"  push: {row}")
        return row

    async def _idle(self, server, dashboards, seconds) -> dict:
        receipts = client.Receipts()
        streams, _, failures = await client.open_streams(
            dashboards, port=server.port, path=STREAM_PATH, cookie=self.cookie, receipts=receipts
        )
        await asyncio.sleep(1.0)
        cpu0, q0 = server.cpu(), server.stats()["queries"]
        receipts.bytes = 0
        await asyncio.sleep(seconds)
        cpu1, q1 = server.cpu(), server.stats()["queries"]
        await client.close_streams(streams)
        row = {
            "server": server.kind, "layer": "-", "mode": "idle streams (no activity)",
            "path": STREAM_PATH, "clients": len(streams) - failures, "wall_s": seconds,
            "server_cpu_s": cpu1 - cpu0, "server_queries": q1 - q0,
            "requests": len(streams), "errors": failures, "bytes": receipts.bytes,
        }  # fmt: skip
        LOG(f"  idle: {row}")
        return row

    # -- 5. django-eventstream side by side ---------------------------------------------------

    def eventstream(self) -> None:
        streams = 1000
        seconds = 5 if self.quick else 10
        burst = 300 if self.quick else 1000
        rows = []
        for name, settings, path in (
            ("taskstream", "bench.settings", STREAM_PATH),
            ("django-eventstream 5.3", "bench.es_settings", "/es/"),
        ):
            for kind in ("uvicorn",):
                env = {"DJANGO_SETTINGS_MODULE": settings}
                with self.server(kind, "memory", env=env) as server:
                    base = server.rss_kb()
                    row = arun(self._es_one(server, name, path, streams, seconds, burst, base))
                    rows.append(row)
        self.results["eventstream"] = rows

    async def _es_one(self, server, name, path, streams, seconds, burst, base) -> dict:
        receipts = client.Receipts()
        opened, open_secs, failures = await client.open_streams(
            streams, port=server.port, path=path, cookie=self.cookie, receipts=receipts
        )
        live = len(opened) - failures
        await asyncio.sleep(2.0)
        kb = (server.rss_kb() - base) / max(1, live)
        receipts.by_event.clear()
        # steady: 10 transitions/s (20 events/s: execution.status + task.status)
        spec = {"kind": "transition", "rate": 10, "count": int(10 * seconds)}
        produced = await self.produce(server, "memory", spec)
        expected = len(produced["events"]) * live
        await self.drain(receipts, expected, timeout=30)
        steady = self.latency(produced["events"], receipts.by_event, lambda t, k: live)
        receipts.by_event.clear()
        # burst: as fast as the producer can commit
        spec = {"kind": "transition", "rate": 0, "count": burst}
        produced = await self.produce(server, "memory", spec)
        expected = len(produced["events"]) * live
        await self.drain(receipts, expected, timeout=120, quiet=5.0)
        burst_stats = self.latency(produced["events"], receipts.by_event, lambda t, k: live)
        await client.close_streams(opened)
        row = {
            "stack": name, "server": server.kind, "streams": live, "failures": failures,
            "open_seconds": open_secs, "kb_per_stream": kb,
            "steady": steady, "burst": {**burst_stats, "events": len(produced["events"]),
                                        "burst_rate": produced["rate"]},
        }  # fmt: skip
        LOG(f"  eventstream: {row}")
        return row

    # -- 6. publish overhead ---------------------------------------------------------------

    def overhead(self) -> None:
        ops = 300 if self.quick else 1000
        rows = []
        layers = ["memory", "redis"] if self.redis else ["memory"]
        for layer in layers:
            out = procs.djangoside(self.env(layer=layer), "overhead", "--ops", str(ops))
            rows.append({"database": "sqlite", "layer": layer, "cases": out})
            LOG(f"  overhead sqlite/{layer}: {out}")
        pg = self._postgres_url()
        if pg:
            for layer in layers:
                out = procs.djangoside(
                    {**self.env(layer=layer), "DATABASE_URL": pg}, "overhead", "--ops", str(ops)
                )
                rows.append({"database": "postgresql", "layer": layer, "cases": out})
                LOG(f"  overhead postgresql/{layer}: {out}")
        self.results["overhead"] = rows

    def _postgres_url(self) -> str | None:
        """A fresh PostgreSQL database for this run, migrated; None when there is none."""
        try:
            import psycopg

            name = f"bench_{self.stamp.replace('-', '_')}"
            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True,
                                 connect_timeout=3) as conn:  # fmt: skip
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
        except Exception as exc:  # report and go on without PostgreSQL
            self.results["notes"].append(f"PostgreSQL overhead skipped: {exc}")
            return None
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
        procs.djangoside({**self.env(settings="bench.es_settings"), "DATABASE_URL": url},
                         "setup", "--tasks", "1")  # fmt: skip
        return url

    def loglines(self) -> None:
        from bench import loglines

        self.results["loglines"] = loglines.measure(self.quick)

    # -- all ------------------------------------------------------------------------------

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.stamp}{'-quick' if self.quick else ''}.json"
        text = json.dumps(self.results, indent=1, default=str)
        path.write_text(text)
        return path


PHASES = [
    "overhead",
    "capacity",
    "throughput",
    "polling",
    "eventstream",
    "loglines",
    "burst",
    "storm",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller, a few minutes")
    parser.add_argument("--only", default=",".join(PHASES), help="comma list of phases")
    parser.add_argument("--profile", action="store_true", help="py-spy the 10k-stream runs")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    limit = procs.raise_nofile()
    bench = Bench(args.quick, args.profile)
    LOG(f"bench {bench.stamp}: open-file limit {limit}, redis {'up' if bench.redis else 'DOWN'}")
    if not bench.redis:
        bench.results["notes"].append("REDIS WAS DOWN: the Redis rows are missing from this run")
    bench.setup()
    started = time.perf_counter()
    for phase in phases:
        t0 = time.perf_counter()
        LOG(f"== {phase}")
        getattr(bench, phase)() if hasattr(bench, phase) else getattr(burst, phase)(bench)
        bench.results.setdefault("phase_seconds", {})[phase] = time.perf_counter() - t0
        bench.save()
    bench.results["total_seconds"] = time.perf_counter() - started
    path = bench.save()
    LOG(f"results: {path}")
    if not args.no_report:
        from bench import report

        report.write(bench.results)
        if "loglines" in bench.results:
            from bench import loglines

            loglines.write_section(bench.results["loglines"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
