"""Events written before access existed have no audience: give each task's events its
creator and group (tasks.access.task_audience), so their people keep seeing them.
Events of system-made tasks stay empty: only view_all holders and superusers see them."""

from django.db import migrations


def backfill(apps, schema_editor):
    Task = apps.get_model("tasks", "Task")
    Event = apps.get_model("events", "Event")
    owned = Task.objects.exclude(created_by=None, group=None).values_list(
        "pk", "created_by_id", "group_id"
    )
    for pk, user_id, group_id in owned.iterator(chunk_size=2000):
        tokens = sorted(t for t in (f"u:{user_id}" if user_id else "", f"g:{group_id}" if group_id else "") if t)
        Event.objects.filter(task_id=pk, audience="").update(audience=f" {' '.join(tokens)} ")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0004_execution_log_lines"),
        ("events", "0002_access"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
