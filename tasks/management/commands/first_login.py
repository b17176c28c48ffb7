import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first login (a superuser) if there is none, and say how to log in."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        saved = settings.VAR_DIR / "first-login.txt"
        if User.objects.filter(is_superuser=True).exists():
            hint = f" (password in {saved})" if saved.exists() else ""
            self.stdout.write(f"Log in at http://127.0.0.1:8000/ with your superuser{hint}.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        saved.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Mode 0600 from the start: a file created and then chmod-ed is readable by
        # anyone in between. An old file is replaced, not reused with its old mode.
        saved.unlink(missing_ok=True)
        fd = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(f"admin {password}\n")
        self.stdout.write(
            f"Created the first login: user admin, password {password} (saved in {saved}).\n"
            "Log in at http://127.0.0.1:8000/"
        )
