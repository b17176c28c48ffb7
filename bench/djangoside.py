"""The Django-side steps of a bench run, each a subprocess with the bench's environment.

    python -m bench.djangoside setup --tasks K        migrate, the bench login, K tasks
    python -m bench.djangoside produce SPEC_JSON      the separate producer (Redis layer)
    python -m bench.djangoside overhead --ops N       publish overhead (issue item 6)

Each prints one JSON object on its last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.es_settings")

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-password-not-secret"  # a throwaway bench database


def _setup_django() -> None:
    import django

    django.setup()


def setup(tasks: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tasks.models import Execution
    from tasks.services import task_create
    from tasks.states import Status

    call_command("migrate", verbosity=0, interactive=False)
    users = get_user_model()
    if not users.objects.filter(username=BENCH_USER).exists():
        users.objects.create_superuser(BENCH_USER, "bench@example.invalid", BENCH_PASSWORD)
    ids, task_ids = [], []
    for i in range(tasks):
        task = task_create(title=f"bench-exec-{i}")
        execution = Execution.objects.get(pk=task.latest_execution_id)
        execution.transition(Status.RUNNING)
        ids.append(execution.pk)
        task_ids.append(task.pk)
    return {"execution_ids": ids, "task_ids": task_ids}


def overhead(ops: int) -> dict:
    """A transition with its events and publish against the same transition without
    events and a bare UPDATE of the same row, interleaved in rounds in one process."""
    from django.db import transaction

    from tasks import receivers, signals
    from tasks.models import Execution, Task
    from tasks.services import task_create
    from tasks.states import Status

    task = task_create(title="bench-overhead")
    execution = Execution.objects.get(pk=task.latest_execution_id)
    execution.transition(Status.RUNNING)

    def flip() -> None:
        to = Status.WAITING_FOR_INPUT if execution.status == Status.RUNNING else Status.RUNNING
        execution.transition(to, prompt="bench" if to == Status.WAITING_FOR_INPUT else "")

    hooked = [
        (signals.execution_status_changed, receivers.emit_execution_status),
        (signals.task_status_changed, receivers.emit_task_status),
    ]

    def flip_without_events() -> None:
        for signal, receiver in hooked:
            signal.disconnect(receiver)
        try:
            flip()
        finally:
            for signal, receiver in hooked:
                signal.connect(receiver)

    state = {"to": Status.WAITING_FOR_INPUT}

    def bare_update() -> None:
        with transaction.atomic():
            Execution.objects.filter(pk=execution.pk).update(status=state["to"])
        state["to"] = Status.RUNNING if state["to"] != Status.RUNNING else Status.WAITING_FOR_INPUT

    def bare_update_two_rows() -> None:
        with transaction.atomic():
            Execution.objects.filter(pk=execution.pk).update(status=state["to"])
            Task.objects.filter(pk=task.pk).update(status=state["to"])
        state["to"] = Status.RUNNING if state["to"] != Status.RUNNING else Status.WAITING_FOR_INPUT

    cases = {
        "transition with events + publish": flip,
        "same transition, no events": flip_without_events,
        "bare UPDATE (execution + task rows)": bare_update_two_rows,
        "bare UPDATE (execution row)": bare_update,
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    rounds = 10
    per_round = max(1, ops // rounds)
    for _ in range(rounds):
        for name, op in cases.items():
            if name.startswith("bare"):
                # leave the row in a state the state machine accepts afterwards
                execution.refresh_from_db()
            for _ in range(per_round):
                t0 = time.perf_counter()
                op()
                samples[name].append(time.perf_counter() - t0)
            execution.refresh_from_db()
            state["to"] = (
                Status.WAITING_FOR_INPUT if execution.status == Status.RUNNING else Status.RUNNING
            )
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = {
            "ops": len(values),
            "mean_us": statistics.fmean(values) * 1e6,
            "p50_us": values[len(values) // 2] * 1e6,
            "p99_us": values[int(len(values) * 0.99)] * 1e6,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.djangoside")
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup")
    p_setup.add_argument("--tasks", type=int, default=50)
    p_produce = sub.add_parser("produce")
    p_produce.add_argument("spec", help="JSON: kind, rate, count, execution_ids, prefix")
    p_over = sub.add_parser("overhead")
    p_over.add_argument("--ops", type=int, default=2000)
    args = parser.parse_args(argv)
    _setup_django()
    if args.command == "setup":
        result = setup(args.tasks)
    elif args.command == "produce":
        from bench import hooks

        hooks.install_query_counter()
        result = hooks.produce(**json.loads(args.spec))
    else:
        result = overhead(args.ops)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
