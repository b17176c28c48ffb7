from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the ASGI app with daphne (large listen backlog); the embedded default."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--backlog", type=int, default=4096)

    def handle(self, *args, host: str, port: int, backlog: int, **options) -> None:
        from daphne.server import Server

        from config.asgi import application

        endpoint = f"tcp:port={port}:backlog={backlog}:interface={host}"
        self.stdout.write(f"Serving http://{host}:{port}/ (daphne, backlog {backlog})")
        Server(application=application, endpoints=[endpoint], signal_handlers=True).run()
