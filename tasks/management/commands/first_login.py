import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first login (a superuser) if there is none, and say how to log in."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        saved = settings.VAR_DIR / "first-login.txt"
        if User.objects.filter(is_superuser=True).exists():
            hint = f" (password in {saved})" if saved.exists() else ""
            self.stdout.write(f"Log in at http://127.0.0.1:8000/ with your superuser{hint}.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(f"admin {password}\n")
        saved.chmod(0o600)
        self.stdout.write(
            f"Created the first login: user admin, password {password} (saved in {saved}).\n"
            "Log in at http://127.0.0.1:8000/"
        )
