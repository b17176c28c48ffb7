"""Events written before access existed get their task's audience (tasks/0005), so the
people who made or share a task keep seeing its history; a system task's stay empty."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

BEFORE = [("tasks", "0004_execution_log_lines"), ("events", "0002_access")]
AFTER = [("tasks", "0005_event_audience_backfill")]


def test_old_events_get_their_tasks_audience() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    Task = apps.get_model("tasks", "Task")
    Event = apps.get_model("events", "Event")
    ann = User.objects.create(username="ann")
    team = Group.objects.create(name="team")
    shared = Task.objects.create(title="s", function="f", created_by=ann, group=team)
    system = Task.objects.create(title="x", function="f")
    for task in (shared, system):
        Event.objects.create(type="task.created", task_id=task.pk, data={})
    Event.objects.create(type="worker.started", data={})

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    Event = apps.get_model("events", "Event")
    audiences = {(e.task_id, e.type): e.audience for e in Event.objects.all()}
    assert audiences == {
        (shared.pk, "task.created"): f" g:{team.pk} u:{ann.pk} ",
        (system.pk, "task.created"): "",
        (None, "worker.started"): "",
    }
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
