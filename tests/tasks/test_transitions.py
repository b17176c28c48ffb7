import itertools

import pytest

from events.models import Event
from tasks.models import Execution, Task
from tasks.states import ALLOWED, STEP_ALLOWED, Status, StepStatus, TransitionNotAllowed
from tests.factories import make_execution, make_step

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

ALLOWED_PAIRS = [(frm, to) for frm, tos in ALLOWED.items() for to in sorted(tos)]
DISALLOWED_PAIRS = [
    (frm, to)
    for frm, to in itertools.product(Status.values, Status.values)
    if to not in ALLOWED[frm]
]


def test_the_machine_is_the_contract() -> None:
    assert {(str(f), str(t)) for f, t in ALLOWED_PAIRS} == {
        ("pending", "running"),
        ("pending", "cancelled"),
        ("running", "waiting_for_input"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("waiting_for_input", "running"),
        ("waiting_for_input", "cancelled"),
        ("waiting_for_input", "failed"),
    }


@pytest.mark.parametrize(("frm", "to"), ALLOWED_PAIRS)
def test_allowed_transition_emits_one_execution_event_with_contract_data(frm, to) -> None:
    execution = make_execution(frm)
    before = Event.objects.order_by("-id").first().id

    execution.transition(
        to,
        error="boom" if to == Status.FAILED else "",
        prompt="Which one?" if to == Status.WAITING_FOR_INPUT else "",
    )

    new = list(Event.objects.filter(id__gt=before).order_by("id"))
    status_events = [e for e in new if e.type == "execution.status"]
    assert len(status_events) == 1
    event = status_events[0]
    expected = {"from": frm, "to": to}
    if to == Status.FAILED:
        expected["error"] = "boom"
    if to == Status.WAITING_FOR_INPUT:
        expected["prompt"] = "Which one?"
    assert event.data == expected
    assert event.execution_id == execution.pk
    assert event.task_id == execution.task_id
    # The task shows its latest execution's status, announced by exactly one task.status.
    assert [e.type for e in new] == ["execution.status", "task.status"]
    assert new[1].data == expected
    execution.refresh_from_db()
    assert execution.status == to
    assert Task.objects.get(pk=execution.task_id).status == to


@pytest.mark.parametrize(("frm", "to"), DISALLOWED_PAIRS)
def test_disallowed_transition_raises_and_writes_nothing(frm, to) -> None:
    execution = make_execution(frm)
    events_before = Event.objects.count()
    row_before = Execution.objects.filter(pk=execution.pk).values().get()

    with pytest.raises(TransitionNotAllowed, match=f"is {frm}; it cannot become {to}"):
        execution.transition(to)

    assert Event.objects.count() == events_before
    assert Execution.objects.filter(pk=execution.pk).values().get() == row_before
    assert Task.objects.get(pk=execution.task_id).status == frm


def test_timestamps_follow_the_transitions() -> None:
    execution = make_execution(Status.PENDING)
    assert execution.started_at is None
    execution.transition(Status.RUNNING)
    assert execution.started_at is not None and execution.finished_at is None
    execution.transition(Status.SUCCEEDED)
    execution.refresh_from_db()
    assert execution.finished_at >= execution.started_at
    assert execution.duration is not None


def test_task_created_and_execution_created_events() -> None:
    execution = make_execution(Status.PENDING, title="Nightly import")
    events = list(Event.objects.filter(task_id=execution.task_id).order_by("id"))
    assert [(e.type, e.data) for e in events] == [
        ("task.created", {"title": "Nightly import", "status": "pending"}),
        ("execution.created", {"number": 1, "status": "pending"}),
    ]
    assert events[1].execution_id == execution.pk


STEP_EVENTS = {
    StepStatus.RUNNING: "step.started",
    StepStatus.SUCCEEDED: "step.completed",
    StepStatus.SKIPPED: "step.completed",
    StepStatus.FAILED: "step.failed",
}


@pytest.mark.parametrize("to", [StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED])
def test_step_transitions_emit_step_events(to) -> None:
    execution = make_execution(Status.RUNNING)
    step = make_step(execution, index=2, name="transform")
    step.transition(StepStatus.RUNNING)
    step.transition(to, error="bad row" if to == StepStatus.FAILED else "")

    events = list(Event.objects.filter(type__startswith="step.").order_by("id"))
    assert [e.type for e in events] == ["step.started", STEP_EVENTS[to]]
    started, finished = (e.data for e in events)
    assert started == {
        "step_id": step.pk,
        "index": 2,
        "name": "transform",
        "status": "running",
        "duration_ms": None,
        "error": "",
    }
    assert finished["status"] == to
    assert finished["duration_ms"] >= 0
    assert finished["error"] == ("bad row" if to == StepStatus.FAILED else "")


@pytest.mark.parametrize(
    ("frm", "to"),
    [(f, t) for f in StepStatus.values for t in StepStatus.values if t not in STEP_ALLOWED[f]],
)
def test_disallowed_step_transition_raises_and_writes_nothing(frm, to) -> None:
    execution = make_execution(Status.RUNNING)
    step = make_step(execution)
    if frm != StepStatus.PENDING:
        if frm != StepStatus.SKIPPED:
            step.transition(StepStatus.RUNNING)
        if frm not in (StepStatus.RUNNING,):
            step.transition(frm)
    events_before = Event.objects.count()
    with pytest.raises(TransitionNotAllowed):
        step.transition(to)
    assert Event.objects.count() == events_before
    step.refresh_from_db()
    assert step.status == frm
