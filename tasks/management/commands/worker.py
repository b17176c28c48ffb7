import math
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.engine.worker import Worker, WorkerConfig


def _positive[N: (int, float)](name: str, raw: str | None, kind: Callable[[str], N]) -> N | None:
    """Checked here, not by argparse, so that a bad value is one line, not a usage page."""
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise CommandError(f"{name} must be a number, got {raw!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise CommandError(f"{name} must be more than 0, got {raw!r}")
    return value


class Command(BaseCommand):
    help = (
        "Run executions in this process until SIGTERM/SIGINT (needs REDIS_URL so that its "
        "events reach the servers). Any number of workers may run against one database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            default=None,
            help="executions run at once (default WORKER_CONCURRENCY)",
        )
        parser.add_argument(
            "--lease",
            default=None,
            help="seconds a running execution's lease lasts (default WORKER_LEASE_SECONDS)",
        )
        parser.add_argument(
            "--poll",
            default=None,
            help="seconds between looks for work when idle (default WORKER_POLL_SECONDS)",
        )

    def handle(
        self,
        *args: Any,
        concurrency: str | None,
        lease: str | None,
        poll: str | None,
        **options: Any,
    ) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "REDIS_URL is not set: this worker's events could not reach the server "
                "(without Redis each process has its own channel layer); set REDIS_URL, or "
                "let `manage.py serve` run executions in-process"
            )
        config = WorkerConfig.from_settings(
            concurrency=_positive("--concurrency", concurrency, int),
            lease_seconds=_positive("--lease", lease, float),
            poll_seconds=_positive("--poll", poll, float),
        )
        # Load the channel layer (and redis) before saying "ready", not on the first event.
        get_channel_layer()
        worker = Worker(config)

        def stop(signum: int, frame: FrameType | None) -> None:
            worker.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(
            f"Worker {worker.id} ready: concurrency {config.concurrency}, "
            f"lease {config.lease_seconds:g}s"
        )
        sys.stdout.flush()
        worker.run()
        self.stdout.write(f"Worker {worker.id} stopped")
