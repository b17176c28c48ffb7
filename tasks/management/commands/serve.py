from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = (
        "Serve the ASGI app with daphne (large listen backlog) and run executions in the same "
        "process (worker threads): the embedded default."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--backlog", type=int, default=4096)
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help="executions run at once by the in-process worker (default WORKER_CONCURRENCY)",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="serve only; leave executions to `manage.py worker` processes",
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        backlog: int,
        concurrency: int | None,
        no_worker: bool,
        **options: Any,
    ) -> None:
        from daphne.server import Server

        from config.asgi import application
        from tasks.engine.worker import Reaper, Worker, WorkerConfig

        if concurrency is not None and concurrency < 1:
            from django.core.management.base import CommandError

            raise CommandError(f"--concurrency must be at least 1, got {concurrency}")
        worker = None
        reaper = None
        if not no_worker:
            worker = Worker(
                WorkerConfig.from_settings(concurrency=concurrency), kind="serve"
            ).start()
            self.stdout.write(
                f"Worker {worker.id} running in-process: concurrency {worker.config.concurrency}"
            )
        else:
            # No worker here, but lost workers are still noticed (worker.lost) and reaped.
            reaper = Reaper(WorkerConfig.from_settings()).start()
        endpoint = f"tcp:port={port}:backlog={backlog}:interface={host}"
        self.stdout.write(f"Serving http://{host}:{port}/ (daphne, backlog {backlog})")
        try:
            # Returns when daphne's own SIGTERM/SIGINT handlers stop the reactor.
            Server(application=application, endpoints=[endpoint], signal_handlers=True).run()
        finally:
            if reaper is not None:
                reaper.stop()
            if worker is not None:
                worker.shutdown()
                self.stdout.write(f"Worker {worker.id} stopped")
