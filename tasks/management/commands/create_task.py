from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.registry import DEFAULT_FUNCTION
from tasks.services import task_create, task_kwargs_parse
from tasks.states import TaskInputError


class Command(BaseCommand):
    help = "Create a task, enqueue its first execution and print the task's id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("title")
        parser.add_argument(
            "--function",
            default=DEFAULT_FUNCTION,
            help=f"dotted path of a @task function (default {DEFAULT_FUNCTION})",
        )
        parser.add_argument("--kwargs", default="{}", help="keyword arguments as a JSON object")
        parser.add_argument("--description", default="")

    def handle(
        self, *args, title: str, function: str, kwargs: str, description: str, **options
    ) -> None:
        try:
            task = task_create(
                title=title,
                function=function,
                kwargs=task_kwargs_parse(kwargs),
                description=description,
            )
        except TaskInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(task.pk))
