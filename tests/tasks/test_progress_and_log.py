"""Progress and log lines: the contract's event data, written with the row update."""

import pytest

from events.models import Event
from tasks.services import execution_log, execution_progress
from tasks.states import Status, TaskInputError, TransitionNotAllowed
from tests.factories import make_execution, make_task
from tests.tasks.engine import events_of, run_runnable

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_pipeline_reports_progress_and_log_lines_per_step() -> None:
    execution = make_task(kwargs={"steps": 2, "delay": 0}).latest_execution
    run_runnable()
    progress = [e.data for e in events_of(execution.pk, "execution.progress")]
    assert progress == [
        {"done": 0, "total": 2, "percent": 0, "message": "starting"},
        {"done": 1, "total": 2, "percent": 50, "message": "step 1 of 2 done"},
        {"done": 2, "total": 2, "percent": 100, "message": "step 2 of 2 done"},
    ]
    logs = [e.data for e in events_of(execution.pk, "execution.log")]
    assert logs == [
        {"level": "info", "message": "step 1 of 2: working for 0s"},
        {"level": "info", "message": "step 1 of 2: done"},
        {"level": "info", "message": "step 2 of 2: working for 0s"},
        {"level": "info", "message": "step 2 of 2: done"},
    ]
    execution.refresh_from_db()
    assert (execution.progress_done, execution.progress_total) == (2, 2)
    assert execution.progress_message == "step 2 of 2 done"
    assert execution.status == Status.SUCCEEDED


def test_progress_service_updates_the_row_and_emits_one_event() -> None:
    execution = make_execution(Status.RUNNING)
    execution_progress(execution=execution, done=3, total=8, message="three\nof eight")
    execution.refresh_from_db()
    assert (execution.progress_done, execution.progress_total) == (3, 8)
    assert execution.progress_message == "three of eight"
    event = events_of(execution.pk, "execution.progress")[-1]
    assert event.data == {"done": 3, "total": 8, "percent": 38, "message": "three of eight"}
    assert event.task_id == execution.task_id
    execution_progress(execution=execution, done=5, total=None)
    assert events_of(execution.pk, "execution.progress")[-1].data == {
        "done": 5,
        "total": None,
        "percent": None,
        "message": "",
    }


def test_log_service_emits_the_line_as_given() -> None:
    execution = make_execution(Status.RUNNING)
    execution_log(execution=execution, level="warning", message="disk <90%> full\nsecond line")
    event = events_of(execution.pk, "execution.log")[-1]
    assert event.data == {"level": "warning", "message": "disk <90%> full\nsecond line"}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"done": -1, "total": 3}, TaskInputError, "done must be a whole number of at least 0"),
        ({"done": 4, "total": 3}, TaskInputError, r"done \(4\) must not be more than total \(3\)"),
        ({"done": 1, "total": -2}, TaskInputError, "total must be a whole number of at least 0"),
        ({"done": "1", "total": 2}, TaskInputError, "done must be a whole number"),
    ],
)
def test_bad_progress_is_refused_and_changes_nothing(kwargs, error, message) -> None:
    execution = make_execution(Status.RUNNING)
    before = Event.objects.count()
    with pytest.raises(error, match=message):
        execution_progress(execution=execution, **kwargs)
    execution.refresh_from_db()
    assert (execution.progress_done, execution.progress_total) == (0, None)
    assert Event.objects.count() == before


@pytest.mark.parametrize("status", [Status.PENDING, Status.SUCCEEDED, Status.FAILED, "cancelled"])
def test_progress_and_log_are_refused_unless_running(status) -> None:
    execution = make_execution(status)
    before = Event.objects.count()
    with pytest.raises(TransitionNotAllowed, match=f"execution {execution.pk} is {status}"):
        execution_progress(execution=execution, done=1, total=2)
    with pytest.raises(TransitionNotAllowed, match=f"execution {execution.pk} is {status}"):
        execution_log(execution=execution, level="info", message="hi")
    assert Event.objects.count() == before


def test_an_unknown_log_level_is_refused() -> None:
    execution = make_execution(Status.RUNNING)
    before = Event.objects.count()
    with pytest.raises(TaskInputError, match="level must be one of debug, info, warning, error"):
        execution_log(execution=execution, level="loud", message="hi")
    assert Event.objects.count() == before
