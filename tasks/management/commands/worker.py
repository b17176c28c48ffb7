import signal
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.worker import Worker, WorkerConfig


def _positive(kind):
    def parse(raw: str):
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"not a number: {raw!r}") from None
        if not value > 0:
            raise ValueError(f"must be more than 0, got {raw!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


class Command(BaseCommand):
    help = (
        "Run executions in this process until SIGTERM/SIGINT (needs REDIS_URL so that its "
        "events reach the servers). Any number of workers may run against one database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=_positive(int),
            default=None,
            help="executions run at once (default WORKER_CONCURRENCY)",
        )
        parser.add_argument(
            "--lease",
            type=_positive(float),
            default=None,
            help="seconds a running execution's lease lasts (default WORKER_LEASE_SECONDS)",
        )
        parser.add_argument(
            "--poll",
            type=_positive(float),
            default=None,
            help="seconds between looks for work when idle (default WORKER_POLL_SECONDS)",
        )

    def handle(self, *args, concurrency, lease, poll, **options) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "REDIS_URL is not set: this worker's events could not reach the server "
                "(without Redis each process has its own channel layer); set REDIS_URL, or "
                "let `manage.py serve` run executions in-process"
            )
        config = WorkerConfig.from_settings(
            concurrency=concurrency, lease_seconds=lease, poll_seconds=poll
        )
        worker = Worker(config)

        def stop(signum, frame) -> None:
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
