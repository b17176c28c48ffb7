from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from events.models import Event


class Command(BaseCommand):
    help = "Delete events older than EVENTS_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="override the retention")

    def handle(self, *args: Any, days: int | None, **options: Any) -> None:
        days = settings.EVENTS_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1")
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = Event.objects.filter(at__lt=cutoff).delete()
        self.stdout.write(f"deleted {deleted} events older than {days} days")
