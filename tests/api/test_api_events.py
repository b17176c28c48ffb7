"""GET /api/events/: the log after an id, in pages, with /events/' filters and visibility."""

from __future__ import annotations

import pytest

from events.models import Event
from tasks.models import Task
from tasks.states import Status
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_read_in_pages_exactly_the_log_in_order(api, people):
    alice = people["creator"]
    for status in (Status.SUCCEEDED, Status.FAILED, Status.WAITING_FOR_INPUT):
        make_execution(status, created_by=alice.user)
    make_execution(Status.SUCCEEDED, created_by=people["other"].user)  # not alice's
    mine = set(Task.objects.filter(created_by=alice.user).values_list("id", flat=True))
    visible = [e.as_dict() for e in Event.objects.order_by("id") if e.task_id in mine]
    read: list[dict] = []
    after = 0
    while True:
        body = api.get("/api/events/", alice, after=after, limit=4).json()
        if not body["events"]:
            assert body["last_id"] == after
            break
        assert len(body["events"]) <= 4
        assert body["last_id"] == body["events"][-1]["id"]
        read += body["events"]
        after = body["last_id"]
    assert read == visible and len(visible) > 8


def test_type_task_and_execution_filters(api, people):
    alice = people["creator"]
    execution = make_execution(Status.SUCCEEDED, created_by=alice.user)
    make_execution(Status.FAILED, created_by=alice.user)
    body = api.get("/api/events/", alice, type="execution.*", execution=execution.pk).json()
    assert [e["type"] for e in body["events"]] == [
        "execution.created",
        "execution.status",
        "execution.status",
    ]
    body = api.get("/api/events/", alice, type="task.created", task=execution.task_id).json()
    assert [(e["type"], e["task_id"]) for e in body["events"]] == [
        ("task.created", execution.task_id)
    ]
    statuses = api.get("/api/events/", alice, type="task.status,execution.status").json()
    assert {e["type"] for e in statuses["events"]} == {"task.status", "execution.status"}
