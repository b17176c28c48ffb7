from typing import Any

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.bounds import text_problem
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
        parser.add_argument(
            "--group", default="", help="share it with this group (its name): its members see it"
        )

    def handle(
        self,
        *args: Any,
        title: str,
        function: str,
        kwargs: str,
        description: str,
        group: str,
        **options: Any,
    ) -> None:
        # The command line is the system: it may share a task with any group.
        shared_with = None
        if group.strip():
            if text_problem(group):
                raise CommandError(f"group {text_problem(group)}")
            shared_with = Group.objects.filter(name=group.strip()).first()
            if shared_with is None:
                raise CommandError(f"no group named {group.strip()[:80]!r}")
        try:
            task = task_create(
                title=title,
                function=function,
                kwargs=task_kwargs_parse(kwargs),
                description=description,
                group=shared_with,
            )
        except TaskInputError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(task.pk))
