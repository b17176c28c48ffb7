from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.management.ids import by_id
from tasks.models import Task
from tasks.services import task_retry
from tasks.states import TaskInputError, TransitionNotAllowed


class Command(BaseCommand):
    help = "Retry a task whose latest execution failed or was cancelled: a new numbered execution."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id", type=str)

    def handle(self, *args: Any, task_id: str, **options: Any) -> None:
        task = by_id(Task.objects.all(), task_id, "task")
        try:
            execution = task_retry(task=task)
        except (TransitionNotAllowed, TaskInputError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{execution.pk}")
