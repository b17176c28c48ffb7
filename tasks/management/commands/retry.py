from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Task
from tasks.services import task_retry
from tasks.states import TaskInputError, TransitionNotAllowed


class Command(BaseCommand):
    help = "Retry a task whose latest execution failed or was cancelled: a new numbered execution."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id", type=str)

    def handle(self, *args, task_id: str, **options) -> None:
        if not task_id.strip().isdigit():
            raise CommandError(f"task id must be a whole number, got {task_id!r}")
        task = Task.objects.filter(pk=int(task_id)).first()
        if task is None:
            raise CommandError(f"task {int(task_id)} does not exist")
        try:
            execution = task_retry(task=task)
        except (TransitionNotAllowed, TaskInputError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{execution.pk}")
