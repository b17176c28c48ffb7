"""External executions through POST /api/executions/{id}/report/: the same state machine,
events and leases as worker-run ones; workers never claim them; a lease that runs out
fails them as `runner lost`."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from events.models import Event
from tasks.models import Execution, Step, Task
from tasks.services import executions_claim, executions_reap
from tasks.states import Status
from tests.api.conftest import one_line_detail
from tests.factories import make_execution
from tests.tasks.engine import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def alice(people):
    return people["creator"]


@pytest.fixture
def report(api, alice):
    def send(execution: Execution, body, *, status: int = 200):
        response = api.post(f"/api/executions/{execution.pk}/report/", body, alice)
        assert response.status_code == status, response.content
        return response.json()

    return send


def external(alice, status: str = Status.PENDING) -> Execution:
    return make_execution(status, created_by=alice.user, function="external", title="ext")


def types_of(execution: Execution, since: int = 0) -> list[str]:
    return list(
        Event.objects.filter(execution_id=execution.pk, id__gt=since)
        .exclude(type__startswith="task.")  # the task's own echo of each status
        .order_by("id")
        .values_list("type", flat=True)
    )


def test_workers_never_claim_an_external_execution(alice):
    waiting = external(alice)
    answered = external(alice, Status.WAITING_FOR_INPUT)
    answered.answer = "yes"
    answered.save()
    ordinary = make_execution(Status.PENDING)
    assert executions_claim(worker_id="w", limit=10, lease_seconds=30) == [ordinary.pk]
    for execution in (waiting, answered):
        execution.refresh_from_db()
        assert execution.worker_id == "" and execution.status != Status.RUNNING


def test_create_task_command_takes_external():
    out = StringIO()
    call_command("create_task", "from the shell", "--function", "external", stdout=out)
    task = Task.objects.get(pk=int(out.getvalue()))
    assert task.function == "external" and task.latest_execution.status == Status.PENDING


def test_create_through_the_api_with_free_form_kwargs(api, alice):
    response = api.post(
        "/api/tasks/", {"title": "dag", "function": "external", "kwargs": {"any": [1]}}, alice
    )
    assert response.status_code == 201
    body = response.json()
    assert body["function"] == "external" and body["kwargs"] == {"any": [1]}
    assert body["latest_execution"]["status"] == "pending"


def test_a_run_reported_step_by_step_with_a_question(api, alice, report, settings):
    settings.WORKER_LEASE_SECONDS = 30
    execution = external(alice)
    before = timezone.now()
    state = report(execution, {"status": "running"})
    assert state["status"] == "running" and state["lease_seconds"] == 30
    execution.refresh_from_db()
    assert execution.worker_id == "runner:creator" and execution.started_at is not None
    assert execution.lease_expires_at >= before + timedelta(seconds=30)

    report(execution, {"step": "fetch", "status": "started"})
    report(execution, {"progress": {"done": 1, "total": 2, "message": "fetched"}})
    report(execution, {"log": [{"message": "one"}, {"level": "warning", "message": "two"}]})
    report(execution, {"step": "fetch", "status": "completed"})
    asked = report(execution, {"ask": "Ship it?"})
    assert asked["status"] == "waiting_for_input" and asked["lease_expires_at"] is None
    assert report(execution, {"heartbeat": True})["status"] == "waiting_for_input"
    # Going on before the answer is refused; the answer arrives as an event.
    refused = api.post(f"/api/executions/{execution.pk}/report/", {"status": "running"}, alice)
    assert refused.status_code == 409
    assert "waits for an answer to 'Ship it?'" in one_line_detail(refused)
    answered = api.post(f"/api/executions/{execution.pk}/answer/", {"answer": "yes"}, alice)
    assert answered.status_code == 200
    event = Event.objects.get(execution_id=execution.pk, type="execution.answered")
    assert event.id > asked["last_event_id"]  # a runner following from there gets it
    assert event.data == {"answer": "yes", "by": "creator"}
    assert report(execution, {"status": "running"})["answer"] == "yes"
    report(execution, {"step": "publish", "status": "started"})
    done = report(execution, {"status": "succeeded", "result": {"published": True}})
    assert done["status"] == "succeeded"

    execution.refresh_from_db()
    assert execution.result == {"published": True} and execution.finished_at is not None
    assert execution.task.status == Status.SUCCEEDED
    steps = list(Step.objects.filter(execution=execution).values_list("name", "status"))
    assert steps == [("fetch", "succeeded"), ("publish", "succeeded")]
    assert types_of(execution) == [
        "execution.created",
        "execution.status",  # running
        "step.started",
        "execution.progress",
        "execution.log",
        "execution.log",
        "step.completed",
        "execution.status",  # waiting_for_input, with the prompt
        "execution.log",  # answer received
        "execution.answered",
        "execution.status",  # running again
        "step.started",
        "step.completed",  # left open: finished with the execution
        "execution.status",  # succeeded
    ]
    waiting = Event.objects.filter(execution_id=execution.pk, type="execution.status")[1]
    assert waiting.data == {"from": "running", "to": "waiting_for_input", "prompt": "Ship it?"}


def test_a_failed_step_and_a_failed_run(alice, report):
    execution = external(alice)
    report(execution, {"status": "running"})
    report(execution, {"step": "load", "status": "started"})
    report(execution, {"step": "load", "status": "failed", "error": "disk full"})
    report(execution, {"step": "cleanup", "status": "started"})
    report(execution, {"status": "failed", "error": "load failed: disk full"})
    execution.refresh_from_db()
    assert execution.status == Status.FAILED and execution.error == "load failed: disk full"
    steps = dict(Step.objects.filter(execution=execution).values_list("name", "error"))
    assert steps == {"load": "disk full", "cleanup": "load failed: disk full"}
    status = Event.objects.filter(execution_id=execution.pk, type="execution.status").last()
    assert status.data == {"from": "running", "to": "failed", "error": "load failed: disk full"}


def test_a_cancel_reaches_the_runner_in_its_next_report(api, alice, report):
    execution = external(alice)
    report(execution, {"status": "running"})
    response = api.post(f"/api/executions/{execution.pk}/cancel/", None, alice)
    assert response.json()["cancel_requested"] is True
    assert report(execution, {"heartbeat": True})["cancel_requested"] is True
    assert report(execution, {"status": "cancelled"})["status"] == "cancelled"
    # A pending one is cancelled at once; its runner's reports are then refused.
    pending = external(alice)
    assert api.post(f"/api/executions/{pending.pk}/cancel/", None, alice).status_code == 200
    refused = report(pending, {"status": "running"}, status=409)
    assert refused["detail"] == f"execution {pending.pk} is cancelled; it cannot become running"


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (Status.PENDING, {"status": "succeeded"}, "is pending; it cannot become succeeded"),
        (Status.PENDING, {"step": "a", "status": "started"}, "is pending; steps are reported"),
        (Status.PENDING, {"heartbeat": True}, "is pending; heartbeats are reported only"),
        (Status.PENDING, {"log": [{"message": "x"}]}, "is pending; log lines can be written"),
        (Status.RUNNING, {"step": "a", "status": "completed"}, "no step named 'a' is running"),
        (Status.RUNNING, {"ask": "  "}, None),
        (Status.RUNNING, {"ask": ""}, ""),
        (Status.WAITING_FOR_INPUT, {"ask": "again?"}, "it cannot become waiting_for_input"),
        (Status.SUCCEEDED, {"status": "failed"}, "is succeeded; it cannot become failed"),
        (Status.FAILED, {"progress": {"done": 1}}, "progress can be reported only while"),
    ],
)
def test_reports_the_machine_refuses_change_nothing(api, alice, status, body, detail):
    execution = external(alice, status)
    before = (Event.objects.count(), Step.objects.count())
    response = api.post(f"/api/executions/{execution.pk}/report/", body, alice)
    line = one_line_detail(response)
    if detail is None:
        assert response.status_code == 400 and line == "ask needs a prompt"
    elif detail == "":
        assert response.status_code == 400 and line.startswith("ask: String should have")
    else:
        assert response.status_code == 409 and detail in line
    assert (Event.objects.count(), Step.objects.count()) == before
    assert Execution.objects.get(pk=execution.pk).status == status


def test_a_step_cannot_start_twice_and_bad_reports_are_400(api, alice, report):
    execution = external(alice, Status.RUNNING)
    report(execution, {"step": "a", "status": "started"})
    assert (
        "is already running"
        in report(execution, {"step": "a", "status": "started"}, status=409)["detail"]
    )
    for body, detail in [
        ({"step": "", "status": "started"}, "step: String should have at least 1 character"),
        ({"step": " ", "status": "started"}, "step must not be empty"),
        ({"step": "a\nb", "status": "started"}, "step must be one line"),
        ({"progress": {"done": 3, "total": 2}}, "done (3) must not be more than total (2)"),
        ({"progress": {"done": -1}}, "progress.done: Input should be greater than or equal to 0"),
        ({"log": []}, "log: List should have at least 1 item after validation, not 0"),
        ({"log": [{"level": "loud", "message": "x"}]}, "log.0.level: Input should be"),
        ({"heartbeat": False}, "heartbeat: Input should be True"),
        ({"status": "done"}, "status: Input should be 'running'"),
        ({"status": "running", "step": "x"}, "step.status: Input should be 'started'"),
        ({}, "a report is a JSON object with one of the keys step, status, progress"),
    ]:
        assert report(execution, body, status=400)["detail"].startswith(detail), body


def test_every_report_renews_the_lease(alice, report, settings):
    settings.WORKER_LEASE_SECONDS = 30
    execution = external(alice)
    report(execution, {"status": "running"})
    Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now())
    for body in (
        {"heartbeat": True},
        {"log": [{"message": "x"}]},
        {"progress": {"done": 1}},
        {"step": "s", "status": "started"},
    ):
        before = timezone.now()
        report(execution, body)
        execution.refresh_from_db()
        assert execution.lease_expires_at >= before + timedelta(seconds=30), body
        Execution.objects.filter(pk=execution.pk).update(lease_expires_at=timezone.now())


def test_a_lease_that_runs_out_fails_it_as_runner_lost(alice, report, settings):
    settings.WORKER_LEASE_SECONDS = 0.5
    execution = external(alice)
    report(execution, {"status": "running"})
    report(execution, {"step": "work", "status": "started"})
    # The runner says nothing more; any worker's reaper notices once the lease is over.
    wait_for(
        lambda: executions_reap(cancel_grace_seconds=10) or None,
        timeout=30,
        what="the reaper to take the execution",
    )
    execution.refresh_from_db()
    assert execution.status == Status.FAILED and execution.error == "runner lost"
    assert Step.objects.get(execution=execution).error == "runner lost"
    status = Event.objects.filter(execution_id=execution.pk, type="execution.status").last()
    assert status.data == {"from": "running", "to": "failed", "error": "runner lost"}
    report(execution, {"heartbeat": True}, status=409)  # too late


def test_an_external_task_is_retried_as_a_new_execution_for_its_runner(api, alice, report):
    failed = external(alice, Status.FAILED)
    response = api.post(f"/api/tasks/{failed.task_id}/retry/", None, alice)
    assert response.status_code == 201
    retry = Execution.objects.get(pk=response.json()["id"])
    assert retry.number == 2 and retry.status == Status.PENDING
    assert report(retry, {"status": "running"})["status"] == "running"
