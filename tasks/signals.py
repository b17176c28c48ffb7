"""Signals sent inside the transaction of each change; tasks.receivers turns them into events."""

from django.dispatch import Signal

# sender=Task, task=Task
task_created = Signal()
# sender=Task, task=Task, from_status=str, to_status=str, execution=Execution
task_status_changed = Signal()
# sender=Execution, execution=Execution
execution_created = Signal()
# sender=Execution, execution=Execution, from_status=str, to_status=str
execution_status_changed = Signal()
# sender=Step, step=Step, from_status=str, to_status=str
step_status_changed = Signal()
