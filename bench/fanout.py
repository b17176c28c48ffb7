"""Fan-out and latency at scale, the current tree against a baseline tree in one run.

    uv run --group bench python -m bench.fanout --base var/fanout-base --servers daphne  # ~50 s
    uv run --group bench python -m bench.fanout --base var/fanout-base            # both, ~100 s
    ... --phase latency --streams 10000 --servers daphne                        # 10k streams
    ... --phase firehose --rates 100,150 --profile                              # py-spy too

`--base DIR` is a plain copy of an older tree (`git archive <rev> | tar -x -C DIR`): each
server runs once from that tree and once from this one, back to back, against the same
database, client and producer, so the ratio between them is the figure to trust on this
noisy machine. Phases reuse bench.run's `_open_more` and `_measure`:

- firehose: N streams on `/events/?type=execution.status` (every stream gets every
  transition), the in-process producer at each rate; deliveries/s and p99.
- latency: N streams each following one task, 100 transitions/s (target 3).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import client, procs, run

RESULTS = run.RESULTS


class TreeServer(procs.Server):
    """A bench server whose code comes from `tree` (this checkout when None)."""

    def __init__(self, kind: str, env: dict[str, str], tree: Path | None) -> None:
        super().__init__(kind, env)
        self.tree = tree or procs.ROOT
        self.env = {**env, "PYTHONPATH": str(self.tree)}

    def start(self, timeout: float = 60) -> TreeServer:
        self.process = subprocess.Popen(
            self.command(), cwd=self.tree, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=procs.raise_nofile,
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{''.join(self.lines)}")
            if self._ready.is_set() or self._answers():
                return self
            self._ready.wait(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} did not start:\n{''.join(self.lines)}")


class Fanout(run.Bench):
    extra: dict[str, str] = {}

    def tree_server(self, kind: str, tree: Path | None, **env: str) -> TreeServer:
        server = TreeServer(kind, self.env(layer="memory", **self.extra, **env), tree).start()
        if not self.cookie:
            self.cookie = procs.login_cookie(
                server.url, run.djangoside.BENCH_USER, run.djangoside.BENCH_PASSWORD
            )
        run.arun(self._warm(server))
        return server

    def one(
        self, kind: str, tree: Path | None, label: str, args: argparse.Namespace, **env: str
    ) -> list:
        # A fresh database per server: the same one grew slower run after run (its log
        # and WAL), which made the second of two runs of the same tree look worse.
        self.dir = run.ROOT / "var" / "bench" / f"{self.stamp}-{kind}-{label}-{time.time_ns()}"
        self.dir.mkdir(parents=True)
        self.db = self.dir / "bench.sqlite3"
        self.cookie = ""
        self.setup()
        rows = []
        by_task = args.phase == "latency"
        path = "/events/?type=execution.status"
        with self.tree_server(kind, tree, **env) as server:
            held: dict = {}
            secs = run.arun(self._open_more(server, held, args.streams, by_task=by_task, path=path))
            run.LOG(f"{kind} {label}: {args.streams} streams opened in {secs:.1f} s")
            time.sleep(1.0)
            for rate in args.rates:
                profile_to = None
                if args.profile:
                    profile_to = RESULTS / f"profile-fanout-{self.stamp}-{kind}-{label}-{rate}.txt"
                row = run.arun(self._measure(
                    server, "memory", held, rate=rate, seconds=args.seconds, by_task=by_task,
                    label=args.phase, profile_to=profile_to,
                ))  # fmt: skip
                row["tree"] = label
                rows.append(row)
            run.arun(client.close_streams(held["streams"]))
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["firehose", "latency"], default="firehose")
    parser.add_argument("--servers", default="daphne,uvicorn")
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--rates", default=None, help="transitions/s, comma list")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--base", type=Path, default=None, help="baseline tree to compare")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--repeat", type=int, default=1, help="before/after pairs, alternated")
    parser.add_argument("--env", action="append", default=[], help="K=V for every server")
    parser.add_argument(
        "--variant", action="append", default=[], help="K=V: this tree once more with it"
    )
    args = parser.parse_args(argv)
    args.streams = args.streams or (1000 if args.phase == "firehose" else 10000)
    args.rates = [float(r) for r in (args.rates or "100").split(",")]
    procs.raise_nofile()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    bench = Fanout(quick=True, profile=args.profile)
    bench.extra = dict(kv.split("=", 1) for kv in args.env)
    rows = []
    trees: list[tuple[str, Path | None, dict[str, str]]] = [("after", None, {})]
    if args.base is not None:
        trees.insert(0, ("before", args.base.resolve(), {}))
    for kv in args.variant:
        trees.append((kv.split("=", 1)[1], None, dict([kv.split("=", 1)])))
    for kind in args.servers.split(","):
        for _ in range(args.repeat):
            for label, tree, env in trees:
                rows += bench.one(kind, tree, label, args, **env)
    print(f"\n{'server':8} {'tree':7} {'rate':>5} {'got/s':>6} {'deliv/s':>9} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'cpu s':>6}")  # fmt: skip
    for r in rows:
        print(
            f"{r['server']:8} {r['tree']:7} {r['rate_target']:5.0f} {r['rate_achieved']:6.1f} "
            f"{r['deliveries_per_s']:9.0f} {r.get('p50_ms', 0):8.1f} {r.get('p99_ms', 0):8.1f} "
            f"{r['lost']:6d} {r['server_cpu_s']:6.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fanout-{bench.stamp}-{args.phase}.json"
    out.write_text(json.dumps({"argv": sys.argv[1:], "rows": rows}, indent=1))
    for kind in args.servers.split(","):
        for label, _tree, _env in trees:
            mine = [r for r in rows if r["server"] == kind and r["tree"] == label]
            rate = sum(r["deliveries_per_s"] for r in mine) / len(mine)
            p99 = sorted(r.get("p99_ms", 0) for r in mine)
            print(f"{kind:8} {label:7} mean {rate:9.0f} deliveries/s, p99s {p99}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
