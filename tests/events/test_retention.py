from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from events.models import Event

pytestmark = pytest.mark.django_db


def _event_aged(days: float) -> Event:
    return Event.objects.create(
        type="execution.log", at=timezone.now() - timedelta(days=days), data={}
    )


def test_prune_events_deletes_only_events_older_than_the_retention(settings, capsys) -> None:
    settings.EVENTS_RETENTION_DAYS = 7
    old = _event_aged(8)
    kept = _event_aged(6)

    call_command("prune_events")

    assert list(Event.objects.values_list("id", flat=True)) == [kept.id]
    assert not Event.objects.filter(id=old.id).exists()
    assert capsys.readouterr().out == "deleted 1 events older than 7 days\n"


def test_prune_events_days_override_and_bad_value() -> None:
    _event_aged(2)
    call_command("prune_events", "--days", "1")
    assert not Event.objects.exists()

    _event_aged(2)
    with pytest.raises(CommandError, match="--days must be at least 1"):
        call_command("prune_events", "--days", "0")
    assert Event.objects.count() == 1
