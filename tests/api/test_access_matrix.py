"""Every endpoint of /api/ as each kind of user of the access matrix (contract: Access),
by token and by session: invisible is 404, visible but not actionable is 403, anonymous
is 401, and a refusal changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from events.models import Event
from tasks.models import Execution, Task
from tasks.states import Status
from tests.api.conftest import ACTS, KINDS, SEES, Api, Person, one_line_detail
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(params=["token", "session"])
def via(request) -> str:
    return request.param


@pytest.fixture(params=KINDS)
def who(request, people, via) -> tuple[Person, Api]:
    person = people[request.param]
    if via == "token" or person.user is None:
        return person, Api()
    client = Client()
    client.force_login(person.user)
    return Person(person.kind, person.user, None), Api(client)


def shared(people, status: str = Status.PENDING, **kwargs) -> Execution:
    """An execution of a task "creator" made and shared with "team", in `status`."""
    return make_execution(
        status,
        created_by=people["creator"].user,
        group=people["creator"].user.groups.get(),
        **kwargs,
    )


def expect(response, kind: str, ok: int, *, act: bool = False) -> None:
    if kind == "anonymous":
        assert response.status_code == 401, response.content
        assert "authentication required" in one_line_detail(response)
    elif kind in (ACTS if act else SEES):
        assert response.status_code == ok, response.content
    elif act and kind in SEES:
        assert response.status_code == 403, response.content
        one_line_detail(response)
    else:
        assert response.status_code == 404, response.content
        one_line_detail(response)


def test_list(who, people):
    person, api = who
    execution = shared(people)
    response = api.get("/api/tasks/", person)
    if person.kind == "anonymous":
        assert response.status_code == 401
    else:
        assert response.status_code == 200
        ids = [item["id"] for item in response.json()["items"]]
        assert (execution.task_id in ids) == (person.kind in SEES)
        assert response.json()["count"] == len(ids)


def test_detail(who, people):
    person, api = who
    execution = shared(people)
    response = api.get(f"/api/tasks/{execution.task_id}/", person)
    expect(response, person.kind, 200)
    if response.status_code == 200:
        assert response.json()["executions"][0]["id"] == execution.pk


def test_create(who):
    person, api = who
    response = api.post("/api/tasks/", {"title": "mine", "kwargs": {"steps": 1}}, person)
    if person.kind == "anonymous":
        assert response.status_code == 401
        assert not Task.objects.exists()
        return
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created_by"] == person.user.username and body["status"] == "pending"
    assert Task.objects.get(pk=body["id"]).created_by == person.user


def test_create_privileged_function_is_for_staff(who):
    person, api = who
    body = {"title": "sh", "function": "tasks.examples.shell", "kwargs": {"command": "true"}}
    response = api.post("/api/tasks/", body, person)
    if person.kind == "anonymous":
        assert response.status_code == 401
    elif person.kind in ("staff", "superuser"):
        assert response.status_code == 201, response.content
    else:
        assert response.status_code == 403
        assert one_line_detail(response) == "only staff may run tasks.examples.shell"
    assert Task.objects.count() == (1 if response.status_code == 201 else 0)


def test_create_shared_with_a_group_of_ones_own(who, team):
    person, api = who
    response = api.post("/api/tasks/", {"title": "shared", "group": "team"}, person)
    if person.kind == "anonymous":
        assert response.status_code == 401
    elif person.kind in ("creator", "member"):
        assert response.status_code == 201, response.content
        assert response.json()["group"] == team.pk
    else:
        assert response.status_code == 400
        assert one_line_detail(response) == "group 'team' is not one of your groups"
    assert Task.objects.count() == (1 if response.status_code == 201 else 0)


def test_retry(who, people):
    person, api = who
    execution = shared(people, Status.FAILED)
    response = api.post(f"/api/tasks/{execution.task_id}/retry/", None, person)
    expect(response, person.kind, 201, act=True)
    executions = Execution.objects.filter(task_id=execution.task_id).count()
    if response.status_code == 201:
        assert response.json()["number"] == 2 and executions == 2
    else:
        assert executions == 1


def test_retry_of_a_privileged_function_is_for_staff(who, people):
    person, api = who
    # Made on the command line (only staff may make one), then given to "creator".
    execution = make_execution(
        Status.FAILED, function="tasks.examples.shell", kwargs={"command": "false"}
    )
    creator = people["creator"].user
    Task.objects.filter(pk=execution.task_id).update(created_by=creator, group=creator.groups.get())
    response = api.post(f"/api/tasks/{execution.task_id}/retry/", None, person)
    if person.kind == "superuser":
        assert response.status_code == 201
    elif person.kind in ("creator", "member", "manager"):
        assert response.status_code == 403
        assert one_line_detail(response) == "only staff may run tasks.examples.shell"
    else:
        expect(response, person.kind, 201, act=True)
    assert Execution.objects.filter(task_id=execution.task_id).count() == (
        2 if response.status_code == 201 else 1
    )


def test_cancel(who, people):
    person, api = who
    execution = shared(people)
    response = api.post(f"/api/executions/{execution.pk}/cancel/", None, person)
    expect(response, person.kind, 200, act=True)
    execution.refresh_from_db()
    if response.status_code == 200:
        assert response.json()["status"] == "cancelled" == execution.status
    else:
        assert execution.status == Status.PENDING


def test_answer(who, people):
    person, api = who
    execution = shared(people, Status.WAITING_FOR_INPUT)
    response = api.post(f"/api/executions/{execution.pk}/answer/", {"answer": "yes"}, person)
    expect(response, person.kind, 200, act=True)
    execution.refresh_from_db()
    answered = Event.objects.filter(execution_id=execution.pk, type="execution.answered")
    if response.status_code == 200:
        assert execution.answer == "yes"
        assert answered.get().data == {"answer": "yes", "by": person.user.username}
    else:
        assert execution.answer == "" and not answered.exists()


def test_report(who, people):
    person, api = who
    execution = shared(people, function="external")
    response = api.post(f"/api/executions/{execution.pk}/report/", {"status": "running"}, person)
    expect(response, person.kind, 200, act=True)
    execution.refresh_from_db()
    assert execution.status == (Status.RUNNING if response.status_code == 200 else Status.PENDING)


def test_events_of_a_task(who, people):
    person, api = who
    execution = shared(people)
    response = api.get("/api/events/", person, task=execution.task_id)
    expect(response, person.kind, 200)
    if response.status_code == 200:
        types = [e["type"] for e in response.json()["events"]]
        assert types == ["task.created", "execution.created"]


def test_events_of_an_execution(who, people):
    person, api = who
    execution = shared(people)
    response = api.get("/api/events/", person, execution=execution.pk)
    expect(response, person.kind, 200)
    if response.status_code == 200:
        assert [e["type"] for e in response.json()["events"]] == ["execution.created"]


def test_events_unfiltered_carry_only_visible_tasks(who, people):
    person, api = who
    execution = shared(people)
    response = api.get("/api/events/", person)
    if person.kind == "anonymous":
        assert response.status_code == 401
        return
    assert response.status_code == 200
    task_ids = {e["task_id"] for e in response.json()["events"]}
    assert task_ids == ({execution.task_id} if person.kind in SEES else set())
