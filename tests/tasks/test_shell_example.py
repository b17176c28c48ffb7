"""tasks.examples.shell: output lines become log lines; a non-zero exit fails; staff only."""

import pytest

from tasks.services import task_create
from tasks.states import Status, TaskInputError
from tests.factories import make_task
from tests.tasks.engine import events_of, run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_each_output_line_is_a_log_line() -> None:
    command = "printf 'one\\ntwo <b>\\n'; echo three >&2"
    execution = make_task(function="tasks.examples.shell", kwargs={"command": command})
    execution = execution.latest_execution
    assert run_runnable() == [(execution.pk, Status.SUCCEEDED)]
    lines = [e.data["message"] for e in events_of(execution.pk, "execution.log")]
    assert lines == [f"$ {command}", "one", "two <b>", "three"]
    execution.refresh_from_db()
    assert execution.result == {"exit_code": 0}


def test_a_non_zero_exit_fails_the_step_and_the_execution() -> None:
    execution = make_task(
        function="tasks.examples.shell", kwargs={"command": "echo partial; exit 3"}
    ).latest_execution
    run_runnable()
    execution.refresh_from_db()
    assert execution.status == Status.FAILED
    assert execution.error == "RuntimeError: command exited with status 3"
    assert events_of(execution.pk, "step.failed")[0].data["error"] == execution.error
    assert "partial" in [e.data["message"] for e in events_of(execution.pk, "execution.log")]


def test_only_staff_may_create_it(user) -> None:
    with pytest.raises(TaskInputError, match="only staff may run tasks.examples.shell"):
        task_create(
            title="t", function="tasks.examples.shell", kwargs={"command": "id"}, created_by=user
        )
