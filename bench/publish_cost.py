"""What publishing one committed event costs in one process on the in-memory layer.

    .venv/bin/python -m bench.publish_cost [--events 3000] [--rounds 3] [--per-commit 1]
                                           [--rate 0]

A hub runs on its own event loop thread with one JSON subscriber that drains it; this
thread commits `--events` events, `--per-commit` to a transaction (a transition commits
two: execution.status and task.status), at full speed or `--rate` commits per second.
Reported per event: the committing thread's wall time in `publish` (what a transition's
caller pays), CPU time of the whole process, of the committing thread and of the hub's
loop thread (receive, dispatch, the layer's send and copy), and the delivery latency
from before the commit to the subscriber's receipt. A fresh SQLite database under
var/bench/; nothing else runs.

Each round runs twice, back to back: through the in-memory layer (what the code does) and
the baseline, the hub handed each event straight from the commit with no layer at all
(how the embedded default delivered before events went through the layer everywhere).
The ratio layer/direct of each figure is printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _setup(db: Path) -> None:
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _direct_take(self: Any) -> None:
    """The baseline: the hub gets each event on its loop, and no layer is sent to."""
    self._taken_at = self.loop.time()
    with self._lock:
        batch, self._arrived, self._woken = self._arrived, [], False
    for message in batch:
        self.receive(message)


def _round(count: int, per_commit: int, rate: float, path: str) -> dict[str, float]:
    from django.db import transaction

    from events import publish as publishing
    from events.api import event_emit
    from events.filters import EventFilter
    from events.hub import close_hub, get_hub

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    received: dict[int, float] = {}
    done = threading.Event()
    loop_cpu = [0.0]

    async def consume() -> None:
        hub = await get_hub()
        sub = hub.subscribe(EventFilter())
        ready.set()
        started = time.thread_time()
        while len(received) < count:
            for event, _ in await hub.next_items(sub, 1.0):
                received[event["id"]] = time.perf_counter()
        loop_cpu[0] = time.thread_time() - started
        hub.unsubscribe(sub)
        await close_hub()
        done.set()

    thread = threading.Thread(target=lambda: loop.run_until_complete(consume()), daemon=True)
    thread.start()
    ready.wait(30)

    spent = 0.0
    original = publishing.publish

    def timed(event: Any) -> None:
        nonlocal spent
        start = time.perf_counter()
        original(event)
        spent += time.perf_counter() - start

    publishing.publish = timed  # event_emit calls it through the module
    through_layer, window = publishing._HubFeed._take, publishing.HAND_OVER_WINDOW
    if path == "direct":
        publishing._HubFeed._take = _direct_take  # type: ignore[method-assign]
        publishing.HAND_OVER_WINDOW = 0.0  # a wake-up per commit, as before
    sent: dict[int, float] = {}
    cpu = time.process_time()
    own_cpu = time.thread_time()
    wall = time.perf_counter()
    try:
        for i in range(0, count, per_commit):
            if rate and (wait := wall + i / per_commit / rate - time.perf_counter()) > 0:
                time.sleep(wait)
            start = time.perf_counter()
            with transaction.atomic():
                for j in range(i, min(count, i + per_commit)):
                    event = event_emit(type="execution.log", task_id=1, data={"message": f"m{j}"})
                    sent[event.pk] = start
        if not done.wait(120):
            raise SystemExit(f"only {len(received)} of {count} events arrived")
        own_cpu = time.thread_time() - own_cpu
    finally:
        publishing.publish = original
        publishing._HubFeed._take = through_layer  # type: ignore[method-assign]
        publishing.HAND_OVER_WINDOW = window
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    thread.join(10)
    loop.close()
    latencies = sorted(received[pk] - sent[pk] for pk in sent)
    return {
        "publish_us": spent / count * 1e6,
        "cpu_us": cpu / count * 1e6,
        "committer_cpu_us": own_cpu / count * 1e6,
        "hub_loop_cpu_us": loop_cpu[0] / count * 1e6,
        "wall_us": wall / count * 1e6,
        "latency_p50_ms": latencies[len(latencies) // 2] * 1e3,
        "latency_p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def _handover(batches: int) -> dict[str, float]:
    """The hub's loop alone: CPU per one-event batch from the feed to a subscriber's queue,
    through the layer and straight, alternating, on one loop (no database, no commit)."""
    from events import publish as publishing
    from events.filters import EventFilter
    from events.hub import close_hub, get_hub

    async def measure() -> dict[str, float]:
        hub = await get_hub()
        await asyncio.wait_for(hub.joined.wait(), 10)
        sub = hub.subscribe(EventFilter())
        feed = publishing._hub_feed
        assert feed is not None
        spent = {"layer": 0.0, "direct": 0.0}
        for n in range(4):
            path = ("layer", "direct")[n % 2]
            take = publishing._HubFeed._take if path == "layer" else _direct_take
            base = hub.cursor
            started = time.thread_time()
            for i in range(1, batches + 1):
                event = {
                    "id": base + i, "type": "execution.log", "task_id": 1,
                    "execution_id": None, "at": "2026-01-01T00:00:00Z",
                    "data": {"message": f"m{i}"}, "audience": "",
                }  # fmt: skip
                feed._arrived.append(
                    publishing.Message(type=publishing.MESSAGE_TYPE, event=event, published_at=0)  # type: ignore[typeddict-item]
                )
                take(feed)
                sub.queue.clear()
            spent[path] += time.thread_time() - started
        await close_hub()
        return {path: total / (2 * batches) * 1e6 for path, total in spent.items()}

    return asyncio.run(measure())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-commit", type=int, default=1, help="events per transaction")
    parser.add_argument("--rate", type=float, default=0, help="commits per second (0: flat out)")
    parser.add_argument("--handover", type=int, default=20000, help="batches (hub's loop only)")
    args = parser.parse_args()
    base = ROOT / "var" / "bench"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        _setup(Path(tmp) / "publish.sqlite3")
        handover = _handover(args.handover)
        rounds: dict[str, list[dict[str, float]]] = {"layer": [], "direct": []}
        for n in range(args.rounds):  # alternate, so that drift hits both alike
            for path in ("layer", "direct") if n % 2 == 0 else ("direct", "layer"):
                rounds[path].append(_round(args.events, args.per_commit, args.rate, path))
    pace = f"{args.rate:g} commits/s" if args.rate else "flat out"
    print(
        f"{args.events} events, {args.per_commit} per commit ({pace}) x {args.rounds} rounds, "
        "median of rounds (each round: through the layer, then straight to the hub):"
    )
    print(f"  {'':>16} {'layer':>8} {'direct':>8} {'ratio':>6}")
    for key in rounds["layer"][0]:
        layer = statistics.median(r[key] for r in rounds["layer"])
        direct = statistics.median(r[key] for r in rounds["direct"])
        print(f"  {key:>16} {layer:8.2f} {direct:8.2f} {layer / direct:6.2f}")
    print(
        f"hand-over on the hub's loop alone (CPU us per one-event batch, {args.handover} x 2 "
        f"each): layer {handover['layer']:.2f}, direct {handover['direct']:.2f}, ratio "
        f"{handover['layer'] / handover['direct']:.2f}"
    )


if __name__ == "__main__":
    main()
