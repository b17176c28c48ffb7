from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.management.ids import by_id
from tasks.models import Execution
from tasks.services import execution_cancel
from tasks.states import Status, TaskInputError, TransitionNotAllowed


class Command(BaseCommand):
    help = (
        "Cancel an execution: pending or waiting for input at once; running at its next "
        "checkpoint (by force after WORKER_CANCEL_GRACE_SECONDS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", type=str)

    def handle(self, *args: Any, execution_id: str, **options: Any) -> None:
        execution = by_id(Execution.objects.all(), execution_id, "execution")
        try:
            execution = execution_cancel(execution=execution)
        except (TransitionNotAllowed, TaskInputError) as exc:
            raise CommandError(str(exc)) from None
        if execution.status == Status.CANCELLED:
            self.stdout.write(f"execution {execution.pk} cancelled")
        else:
            self.stdout.write(f"execution {execution.pk} stops at its next checkpoint")
