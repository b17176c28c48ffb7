"""`manage.py cancel | answer | retry` as a person runs them: a refusal is one line on stderr,
a non-zero exit, and nothing changed."""

import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from events.models import Event
from tasks.models import Execution
from tasks.states import Status
from tests.factories import make_execution
from tests.servers import ROOT, process_env

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _manage(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


REFUSALS = [
    ("cancel", None, ["999999"], "execution 999999 does not exist"),
    ("cancel", None, ["abc"], "execution id must be a whole number, got 'abc'"),
    ("cancel", Status.SUCCEEDED, [], "execution {e} is succeeded; it cannot be cancelled"),
    ("answer", Status.WAITING_FOR_INPUT, ["  "], "the answer must not be empty"),
    (
        "answer",
        Status.PENDING,
        ["yes"],
        "execution {e} is pending; only an execution waiting for input can be answered",
    ),
    ("answer", None, ["999999", "yes"], "execution 999999 does not exist"),
    (
        "retry",
        Status.RUNNING,
        [],
        "task {t} is running; only a failed or cancelled task can be retried",
    ),
    ("retry", None, ["999999"], "task 999999 does not exist"),
]


def _state() -> tuple:
    return (
        Event.objects.count(),
        list(Execution.objects.order_by("id").values_list("id", "status", "answer")),
        list(Execution.objects.order_by("id").values_list("cancel_requested_at", flat=True)),
    )


@pytest.mark.parametrize(("command", "status", "argv", "message"), REFUSALS)
def test_refusals_say_why_in_one_line_and_change_nothing(command, status, argv, message) -> None:
    if status is not None:
        execution = make_execution(status)
        target = str(execution.task_id if command == "retry" else execution.pk)
        argv = [target, *argv]
        message = message.format(e=execution.pk, t=execution.task_id)
    before = _state()
    with pytest.raises(CommandError) as refused:
        call_command(command, *argv)
    assert str(refused.value) == message
    assert "\n" not in message
    assert _state() == before


# Two real processes (Django starts slowly on a busy CI box): the exit code and stderr line.
def test_a_refusal_exits_non_zero_with_one_line_on_stderr() -> None:
    done_execution = make_execution(Status.SUCCEEDED)
    before = _state()
    done = _manage("cancel", str(done_execution.pk))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"CommandError: execution {done_execution.pk} is succeeded; it cannot be cancelled"
    ]
    assert done.stdout == ""
    assert _state() == before


def test_an_accepted_command_exits_zero_with_a_one_line_report() -> None:
    waiting = make_execution(Status.WAITING_FOR_INPUT)
    done = _manage("answer", str(waiting.pk), "blue")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"execution {waiting.pk} answered; it resumes shortly\n"
    assert Execution.objects.get(pk=waiting.pk).answer == "blue"
