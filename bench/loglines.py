"""Burst: log lines from one execution into the durable log.

    uv run python -m bench.loglines [--quick] [--no-report]
    uv run python -m bench.run --only loglines [--quick]

One execution, claimed by a worker id, writes lines as fast as one thread can: the
baseline is one transaction per line (`execution_log` in a loop, what `context.log` did);
against it, in the same run, the real `ExecutionContext.log` with its group commit
(tasks/engine/logbuffer.py), timed from the first call until the last line is committed
(`log_flush`). Reported: lines/s of each and their ratio, and the longest a single
`context.log` call took (what a function waits at worst). Every line is checked to be in
the log, once, in order, and published in id order after its commit. On a fresh SQLite
database, then on a fresh PostgreSQL database at 127.0.0.1:5432 when it answers. Each
database runs in its own child process (the project's settings, DATABASE_URL set).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "### Burst: log lines"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


# -- the child: one database ------------------------------------------------------------------


def _child(database_url: str, baseline_lines: int, lines: int) -> dict[str, Any]:
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ["TASK_LOG_LINES_MAX"] = str(10 * (baseline_lines + lines))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    from events import publish as publishing
    from events.models import Event
    from events.types import EventJSON
    from tasks.engine.context import ExecutionContext, RunState
    from tasks.models import Execution
    from tasks.services import execution_log, executions_claim, task_create

    worker_id = "bench-loglines"
    published: list[int] = []

    def listener(event: EventJSON) -> None:
        if event["type"] == "execution.log":
            published.append(event["id"])

    def running_execution(title: str) -> Execution:
        task = task_create(title=title, function="tasks.examples.pipeline", kwargs={})
        execution = task.executions.get()
        claimed = executions_claim(worker_id=worker_id, limit=100, lease_seconds=600)
        assert execution.pk in claimed, "the bench's execution was not claimed"
        return Execution.objects.get(pk=execution.pk)

    def check(execution: Execution, count: int, first_published: int) -> None:
        ids = list(
            Event.objects.filter(execution_id=execution.pk, type="execution.log")
            .order_by("id")
            .values_list("id", flat=True)
        )
        messages = [
            e.data["message"]
            for e in Event.objects.filter(execution_id=execution.pk, type="execution.log")
            .order_by("id")
            .only("data")
        ]
        assert len(ids) == count, f"{len(ids)} lines in the log, expected {count}"
        assert messages == [f"line {i}" for i in range(count)], "lines out of order"
        assert published[first_published:] == ids, "not published once each in id order"

    publishing.add_local_listener(listener)
    out: dict[str, Any] = {"database": database_url.split(":", 1)[0]}

    # Baseline: one transaction per line.
    execution = running_execution("bench loglines baseline")
    mark = len(published)
    started = time.perf_counter()
    for i in range(baseline_lines):
        execution_log(execution=execution, level="info", message=f"line {i}")
    elapsed = time.perf_counter() - started
    check(execution, baseline_lines, mark)
    out["baseline"] = {
        "lines": baseline_lines,
        "seconds": elapsed,
        "rate": baseline_lines / elapsed,
    }

    # Group commit: the worker's real context.
    execution = running_execution("bench loglines group commit")
    state = RunState(
        execution=execution, worker_id=worker_id, answers=[], stopping=threading.Event()
    )
    context = ExecutionContext(task_result=None, state=state)
    mark = len(published)
    worst = 0.0
    calls: list[float] = []
    started = time.perf_counter()
    for i in range(lines):
        t0 = time.perf_counter()
        context.log(f"line {i}")
        took = time.perf_counter() - t0
        calls.append(took)
        worst = max(worst, took)
    context.log_flush()
    elapsed = time.perf_counter() - started
    check(execution, lines, mark)
    calls.sort()
    out["group"] = {
        "lines": lines,
        "seconds": elapsed,
        "rate": lines / elapsed,
        "log_call_p99_ms": calls[int(len(calls) * 0.99)] * 1000,
        "log_call_max_ms": worst * 1000,
        "blocked_max_ms": state.log_buffer.blocked_max * 1000,
        "batch_max": state.log_buffer.batch_max,
        "linger_ms": state.log_buffer.linger * 1000,
    }
    out["ratio"] = out["group"]["rate"] / out["baseline"]["rate"]
    return out


# -- the parent: databases, report ------------------------------------------------------------


def _run_child(database_url: str, baseline_lines: int, lines: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.loglines", "--child", database_url,
         "--baseline-lines", str(baseline_lines), "--lines", str(lines)],
        cwd=ROOT, text=True, capture_output=True, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench.loglines child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _postgres_database(stamp: str) -> str | None:
    try:
        import psycopg

        name = f"bench_loglines_{stamp.replace('-', '_')}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"  PostgreSQL skipped: {exc}", flush=True)
        return None
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def _drop_postgres(url: str) -> None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}"')
    except Exception:
        pass


def measure(quick: bool) -> dict[str, Any]:
    """Both databases, each in its own child process; the results as one dict."""
    baseline_lines, lines = (1500, 30_000) if quick else (5000, 100_000)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-loglines-") as tmp:
        rows.append(_run_child(f"sqlite:///{tmp}/bench.sqlite3", baseline_lines, lines))
        print(f"  loglines sqlite: {rows[-1]}", flush=True)
    pg = _postgres_database(stamp)
    if pg:
        try:
            rows.append(_run_child(pg, baseline_lines, lines))
            print(f"  loglines postgresql: {rows[-1]}", flush=True)
        finally:
            _drop_postgres(pg)
    return {"stamp": stamp, "quick": quick, "rows": rows, "load": os.getloadavg()}


def section(results: dict[str, Any]) -> str:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    table = [
        "| database | baseline: a transaction per line | group commit (context.log) | ratio "
        "| worst context.log call | p99 context.log call |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        base, group = row["baseline"], row["group"]
        table.append(
            f"| {names.get(row['database'], row['database'])} "
            f"| {base['rate']:,.0f} lines/s ({base['lines']:,} lines) "
            f"| {group['rate']:,.0f} lines/s ({group['lines']:,} lines) "
            f"| **{row['ratio']:.1f}x** | {group['log_call_max_ms']:.1f} ms "
            f"| {group['log_call_p99_ms']:.3f} ms |"
        )
    load = ", ".join(f"{x:.1f}" for x in results["load"])
    batch, linger = (
        results["rows"][0]["group"]["batch_max"],
        results["rows"][0]["group"]["linger_ms"],
    )
    return f"""{HEADING}

One execution writing log lines as fast as one thread can (`bench/loglines.py`:
`uv run python -m bench.loglines{" --quick" if results["quick"] else ""}`, or the phase
`loglines` of `bench.run`). Baseline, in the same run: one transaction per line
(`execution_log` in a loop: the row lock, the count update, the audience query and the
INSERT for every line, the same four queries a line `context.log` made before). Group
commit: the worker's real `ExecutionContext.log`, which appends to the execution's buffer;
a flusher thread commits
what gathered within {linger:g} ms, at most {batch:,} lines a transaction, through
`execution_log_many` (one lock, one count update, one audience read, one INSERT per
batch). Timed from the first call until the last line is committed; every line checked in
the log once, in order, and published after its commit in id order. The worst call is
the longest one `context.log` took (it waits only when {batch:,} lines are already waiting,
for the batch in flight). Run {results["stamp"]}, load average {load} on the shared
2-core machine.

{chr(10).join(table)}
"""


def write_section(results: dict[str, Any], path: Path = DOC) -> None:
    """Put the section in docs/benchmarks.md: in place of the last one, or at the end."""
    text = path.read_text()
    new = section(results)
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^#{{1,3}} |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: new + "\n", text, count=1)
    else:  # the first burst section: under a heading of its own at the end
        head = "" if "\n## Bursts\n" in text else "## Bursts\n\n"
        text = text.rstrip("\n") + "\n\n" + head + new
    path.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loglines", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer lines (well under 90 s)")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite docs/")
    parser.add_argument("--child", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-lines", type=int, default=1500, help=argparse.SUPPRESS)
    parser.add_argument("--lines", type=int, default=30_000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.baseline_lines, args.lines)), flush=True)
        return 0
    results = measure(args.quick)
    out = ROOT / "bench" / "results" / f"loglines-{results['stamp']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if not args.no_report:
        write_section(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
