import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.api.watch import EXIT_CANNOT_FOLLOW, CannotFollow, token_from_env, watch


class Command(BaseCommand):
    help = (
        "Follow a task over the server's /events/ stream: steps, a progress bar, log lines; "
        "answer its questions on the terminal. Exits 0 when it succeeds, 1 failed, "
        "2 cancelled (3: it could not be followed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server")
        parser.add_argument(
            "--token", default=None, help="an API token (default: $TASKSTREAM_TOKEN)"
        )

    def handle(self, *args: Any, task_id: str, url: str, token: str | None, **options: Any) -> None:
        text = task_id.strip()
        if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**63):
            raise CommandError(
                f"TASK_ID must be a positive whole number, got {task_id!r}",
                returncode=EXIT_CANNOT_FOLLOW,
            )
        token = (token if token is not None else token_from_env()).strip()
        if not token:
            raise CommandError(
                "an API token is needed: --token or TASKSTREAM_TOKEN (make one at /tokens/ "
                "or with `manage.py create_token USERNAME`)",
                returncode=EXIT_CANNOT_FOLLOW,
            )
        try:
            code = watch(url=url, token=token, task_id=int(text), out=sys.stdout, stdin=sys.stdin)
        except CannotFollow as exc:
            raise CommandError(str(exc), returncode=EXIT_CANNOT_FOLLOW) from None
        except KeyboardInterrupt:
            sys.exit(130)
        sys.exit(code)
