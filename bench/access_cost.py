"""Access and the cost model: 1,000 viewers of the task list, half of them seeing only
their own tasks, against a baseline of 1,000 viewers who all see everything, in one run.

    uv run python -m bench.access_cost [--viewers 1000] [--events 60]

One process, the real hub, the real list stream view (`tasks.web.views.task_list_stream`,
each viewer its own user, grant and subscription) and the real renderers on a fresh SQLite
database under var/bench/. Each event is a task created for a random one of the
"own tasks only" users (two events: task.created, execution.created, one commit), and the
run waits until every viewer who may see it has its fragment before the next.

What it counts: renderer calls (`TaskListRenderer.render`), renders that produced HTML,
fragments delivered, and this process's CPU time over the events. The claim under test:
about one render per event per scope that receives it (here two: everyone who sees
everything, and the task's owner), not one per viewer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup(db: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=f"sqlite:///{db}",
        SECRET_KEY="bench-only-secret-key",
        EVENTS_MAX_STREAMS_PER_USER="100000",
        EVENTS_HEARTBEAT_SECONDS="600",
        EVENTS_STREAM_MAX_SECONDS="3600",
        EVENTS_SUBSCRIBER_BUFFER="100000",
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.html = 0


def count_renders(counter: Counter) -> None:
    from tasks.web.renderers import TaskListRenderer

    original = TaskListRenderer.render

    def render(self, event):  # type: ignore[no-untyped-def]
        counter.calls += 1
        html = original(self, event)
        if html is not None:
            counter.html += 1
        return html

    TaskListRenderer.render = render  # type: ignore[method-assign]


async def scenario(name: str, viewers: list, owners: list, events: int, counter: Counter) -> dict:
    from asgiref.sync import sync_to_async
    from django.test import AsyncRequestFactory

    from events.api import last_event_id
    from events.hub import close_hub
    from tasks.services import task_create
    from tasks.web.views import task_list_stream

    since = await sync_to_async(last_event_id)()
    factory = AsyncRequestFactory()
    received: list[int] = [0] * len(viewers)
    last_seen: list[int] = [0] * len(viewers)
    changed = asyncio.Event()

    async def open_stream(i: int, user) -> None:  # type: ignore[no-untyped-def]
        request = factory.get("/stream/", {"last_event_id": since})

        async def auser():  # type: ignore[no-untyped-def]
            return user

        request.auser = auser  # type: ignore[attr-defined]
        request.user = user
        response = await task_list_stream(request)
        assert response.status_code == 200, response.status_code
        async for chunk in response.streaming_content:
            text = chunk.decode() if isinstance(chunk, bytes) else chunk
            for frame in text.split("\n\n"):
                if "event: fragment" in frame and frame.startswith("id: "):
                    received[i] += 1
                    last_seen[i] = max(last_seen[i], int(frame.split("\n", 1)[0][4:]))
                    changed.set()

    readers = [asyncio.ensure_future(open_stream(i, u)) for i, u in enumerate(viewers)]
    await asyncio.sleep(0)
    sees_all = [u.is_superuser for u in viewers]

    async def wait_for(event_id: int, owner_pk: int) -> None:
        want = [i for i, u in enumerate(viewers) if sees_all[i] or u.pk == owner_pk]
        deadline = time.monotonic() + 120
        while any(last_seen[i] < event_id for i in want):
            changed.clear()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: event {event_id} did not reach its viewers")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 5)

    # Warm-up: every stream subscribed and live before the measured events.
    warm_owner = owners[0]
    await sync_to_async(task_create)(title="warm-up", created_by=warm_owner)
    await wait_for(await sync_to_async(last_event_id)(), warm_owner.pk)

    counter.calls = counter.html = 0
    delivered_before = sum(received)
    rng = random.Random(7)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for n in range(events):
        owner = rng.choice(owners)
        await sync_to_async(task_create)(title=f"{name} {n}", created_by=owner)
        await wait_for(await sync_to_async(last_event_id)(), owner.pk)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await close_hub()
    emitted = events * 2  # task.created + execution.created
    scopes = len({("*" if u.is_superuser else u.pk) for u in viewers})
    return {
        "scenario": name,
        "viewers": len(viewers),
        "scopes": scopes,
        "events": emitted,
        "renderer_calls": counter.calls,
        "renders_with_html": counter.html,
        "renders_per_event": counter.calls / emitted,
        "fragments_delivered": sum(received) - delivered_before,
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_ms_per_event": 1000 * cpu / emitted,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=60, help="tasks created (2 events each)")
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = ROOT / "var" / "bench" / f"access-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    setup(folder / "bench.sqlite3")

    from django.contrib.auth import get_user_model

    User = get_user_model()
    half = args.viewers // 2
    # Those who see everything: superusers (a view_all holder's grant is the same).
    everyone = User.objects.bulk_create(
        [User(username=f"all{i}", is_superuser=True, is_staff=True) for i in range(args.viewers)]
    )
    own = User.objects.bulk_create([User(username=f"own{i}") for i in range(half)])
    counter = Counter()
    count_renders(counter)

    baseline = asyncio.run(scenario("baseline", everyone, own, args.events, counter))
    mixed = asyncio.run(scenario("access", everyone[:half] + own, own, args.events, counter))
    rows = [baseline, mixed]
    cols = [
        "scenario",
        "viewers",
        "scopes",
        "events",
        "renderer_calls",
        "renders_with_html",
        "renders_per_event",
        "fragments_delivered",
        "cpu_ms_per_event",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        cells = [
            f"{row[c]:.2f}"
            if isinstance(row[c], float)
            else f"{row[c]:,}"
            if isinstance(row[c], int)
            else str(row[c])
            for c in cols
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        f"renders per event: access/baseline = "
        f"{mixed['renders_per_event'] / baseline['renders_per_event']:.2f}x; "
        f"CPU per event: access/baseline = "
        f"{mixed['cpu_ms_per_event'] / baseline['cpu_ms_per_event']:.2f}x; "
        f"one render per viewer would be {args.viewers} renders per event"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
