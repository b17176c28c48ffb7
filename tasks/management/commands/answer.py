from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.management.ids import by_id
from tasks.models import Execution
from tasks.services import execution_answer
from tasks.states import TaskInputError, TransitionNotAllowed


class Command(BaseCommand):
    help = "Answer an execution that waits for input; a worker then resumes it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", type=str)
        parser.add_argument("text")

    def handle(self, *args: Any, execution_id: str, text: str, **options: Any) -> None:
        execution = by_id(Execution.objects.all(), execution_id, "execution")
        try:
            execution_answer(execution=execution, answer=text)
        except (TransitionNotAllowed, TaskInputError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"execution {execution.pk} answered; it resumes shortly")
