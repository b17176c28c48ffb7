from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.api.tokens import TokenInputError, token_create


class Command(BaseCommand):
    help = (
        "Make an API token acting as USERNAME (Authorization: Bearer on /api/ and /events/) "
        "and print it, once: only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what will use it")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = get_user_model()._default_manager.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive; a token would not work")
        try:
            made = token_create(user=user, name=name)
        except TokenInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(made.secret)
