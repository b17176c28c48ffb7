"""Two server processes behind one port on Redis, against one, in the same run.

    uv run --group bench python -m bench.multiproc                      # ~90 s
    ... --streams 1000 --rates 50,100 --workers 1,2 --seconds 4

uvicorn `--workers N` (the workers share the listening socket; the kernel spreads the
connections) on the Redis layer, N firehose streams on `/events/?type=execution.status`,
producers in separate processes (the in-memory layer cannot reach two processes). Every
stream counts what it received per event id, so an event delivered twice to one stream
shows as a duplicate, one missing as lost. CPU: every process of the server's group.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path

from bench import client, procs, run
from bench.fanout import Fanout, TreeServer


def group_cpu(pgid: int) -> float:
    """utime + stime of every process in the group (uvicorn's workers are its children)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += (int(fields[11]) + int(fields[12])) / procs.CLK_TCK
    return total


class WorkersServer(TreeServer):
    def __init__(self, env: dict[str, str], workers: int) -> None:
        super().__init__("uvicorn", env, None)
        self.workers = workers

    def command(self) -> list[str]:
        return [*super().command(), "--workers", str(self.workers)]

    def cpu(self) -> float:
        return group_cpu(self.pid)


class Multiproc(Fanout):
    def producers(self, rate: float, count: int, n: int) -> list[procs.Producer]:
        """n producer processes, each flipping its own share of the executions."""
        shares = [self.execution_ids[i::n] for i in range(n)]
        spec = {"kind": "transition", "rate": rate / n, "count": count // n}
        return [
            procs.Producer(self.env(layer="redis"), {**spec, "execution_ids": share})
            for share in shares
        ]

    async def measure(self, server, held: dict, rate: float, seconds: float, n: int) -> dict:
        receipts: client.Receipts = held["receipts"]
        streams = [s for s in held["streams"] if not s.closed.done()]
        live = len(streams)
        receipts.by_event.clear()
        count = max(n, int(rate * seconds))
        cpu0 = server.cpu()
        t0 = time.perf_counter()
        producers = self.producers(rate, count, n)
        results = await asyncio.gather(
            *(asyncio.to_thread(p.result, 60 + seconds * 3) for p in producers)
        )
        events = [e for r in results for e in r["events"] if e[2] == "execution.status"]
        expected = live * len(events)
        await self.drain(receipts, expected, timeout=max(20.0, seconds * 3))
        wall = time.perf_counter() - t0
        cpu = server.cpu() - cpu0
        stats = self.latency(events, receipts.by_event, lambda t, _task: live)
        # Over the span from the first commit to the last receipt: a producer process
        # takes seconds to start, which wall time would count as idle server time.
        last = max((max(a) for a in receipts.by_event.values() if a), default=0.0)
        span = last - min((e[1] for e in events), default=last)
        duplicates = sum(
            max(0, len(receipts.by_event.get(e[0], ())) - live) for e in events
        )  # more receipts of one id than streams: some stream got it twice
        receipts.by_event.clear()
        achieved = sum(r["rate"] for r in results)
        row = {
            "workers": server.workers, "streams": live, "rate_target": rate,
            "rate_achieved": achieved, "events": len(events), "wall_s": wall,
            "span_s": span, "deliveries_per_s": stats.get("delivered", 0) / max(span, 1e-9),
            "server_cpu_s": cpu, "duplicates": duplicates, **stats,
        }  # fmt: skip
        shown = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()}
        run.LOG(f"  multiproc: {shown}")
        return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rates", default="50")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    procs.raise_nofile()
    if not run.redis_up():
        raise SystemExit("bench.multiproc needs Redis at 127.0.0.1:6379")
    bench = Multiproc(quick=True, profile=False)
    bench.setup()
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        server = WorkersServer(bench.env(layer="redis"), workers).start()
        try:
            if not bench.cookie:
                bench.cookie = procs.login_cookie(
                    server.url, run.djangoside.BENCH_USER, run.djangoside.BENCH_PASSWORD
                )
            held: dict = {}
            path = "/events/?type=execution.status"
            run.arun(bench._open_more(server, held, args.streams, by_task=False, path=path))
            time.sleep(2.0)
            for rate in [float(r) for r in args.rates.split(",")]:
                rows.append(
                    run.arun(bench.measure(server, held, rate, args.seconds, args.producers))
                )
            run.arun(client.close_streams(held["streams"]))
        finally:
            server.stop()
    print(f"\n{'workers':>7} {'rate':>5} {'got/s':>6} {'deliv/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'lost':>6} {'dups':>5} {'cpu s':>6}")  # fmt: skip
    for r in rows:
        print(
            f"{r['workers']:7d} {r['rate_target']:5.0f} {r['rate_achieved']:6.1f} "
            f"{r['deliveries_per_s']:9.0f} {r.get('p50_ms', 0):8.1f} {r.get('p99_ms', 0):8.1f} "
            f"{r['lost']:6d} {r['duplicates']:5d} {r['server_cpu_s']:6.1f}"
        )
    base = {r["rate_target"]: r["deliveries_per_s"] for r in rows if r["workers"] == 1}
    for r in rows:
        if r["workers"] != 1 and r["rate_target"] in base:
            ratio = r["deliveries_per_s"] / max(base[r["rate_target"]], 1e-9)
            print(f"workers {r['workers']} at {r['rate_target']:.0f}/s: {ratio:.2f}x one process")
    out: Path = run.RESULTS / f"multiproc-{bench.stamp}.json"
    out.write_text(json.dumps({"rows": rows}, indent=1))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
