from django.core.management.base import BaseCommand, CommandError, CommandParser

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

    def handle(self, *args, execution_id: str, **options) -> None:
        execution = execution_by_id(execution_id)
        try:
            execution = execution_cancel(execution=execution)
        except (TransitionNotAllowed, TaskInputError) as exc:
            raise CommandError(str(exc)) from None
        if execution.status == Status.CANCELLED:
            self.stdout.write(f"execution {execution.pk} cancelled")
        else:
            self.stdout.write(f"execution {execution.pk} stops at its next checkpoint")


def execution_by_id(raw: str) -> Execution:
    if not raw.strip().isdigit():
        raise CommandError(f"execution id must be a whole number, got {raw!r}")
    execution = Execution.objects.filter(pk=int(raw)).first()
    if execution is None:
        raise CommandError(f"execution {int(raw)} does not exist")
    return execution
