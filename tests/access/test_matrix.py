"""The access matrix (Django test client): every kind of user against every page,
fragment, log download, action, the create form and the admin. Streams over a real
socket: test_streams.py.

Invisible is 404; visible but not allowed is 403 (with htmx: a message, nothing else
swapped); anonymous pages redirect to the login page, downloads and streams say 401.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync

from events.api import event_emit
from events.models import Event
from tasks.models import Execution, Task
from tasks.states import Status
from tests.access.conftest import (
    PIPELINE,
    ROLES,
    SEE_ALL,
    SHELL,
    World,
    acts_on_shared,
    may_retry_staff_task,
    sees_shared,
    sees_staff_task,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

HTMX = {"HTTP_HX_REQUEST": "true"}
ADMINS = {"staff", "superuser"}


def body(response) -> str:
    if getattr(response, "streaming", False):

        async def read() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return async_to_sync(read)().decode()
    return response.content.decode()


def all_count(html: str) -> str:
    found = re.search(r'data-status="all">([^<]*)<', html)
    assert found is not None
    return found.group(1)


def snapshot(task: Task) -> tuple:
    """What an action could change: the task's status and executions, and the log."""
    task.refresh_from_db()
    executions = list(Execution.objects.filter(task=task).values_list("number", "status", "answer"))
    return task.status, executions, Event.objects.count()


# --- pages --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_list_search_and_counts_show_only_visible_tasks(world: World, role: str) -> None:
    shared = world.shared_task()
    others = world.own_task("other")
    staff = world.staff_task()
    client = world.client(role)
    response = client.get("/")
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        return
    html = response.content.decode()
    assert (f'id="task-{shared.pk}"' in html) == sees_shared(role)
    assert (f'id="task-{others.pk}"' in html) == (role in {"other"} | SEE_ALL)
    assert (f'id="task-{staff.pk}"' in html) == sees_staff_task(role)
    visible = {
        "creator": 1,
        "member": 1,
        "other": 1,
        "staff": 1,
        "viewer": 3,
        "manager": 3,
        "superuser": 3,
    }[role]
    assert all_count(html) == str(visible)  # counts count only visible tasks
    found = client.get("/", {"q": "shared"}).content.decode()
    assert (f'id="task-{shared.pk}"' in found) == sees_shared(role)
    # The function filter offers only the functions of visible tasks.
    assert (f'<option value="{SHELL}"' in html) == sees_staff_task(role)
    by_function = client.get("/", {"function": SHELL}).content.decode()
    assert (f'id="task-{staff.pk}"' in by_function) == sees_staff_task(role)


@pytest.mark.parametrize("role", ROLES)
def test_task_page_and_its_buttons(world: World, role: str) -> None:
    shared = world.shared_task(Status.WAITING_FOR_INPUT)
    response = world.client(role).get(f"/tasks/{shared.pk}/")
    if role == "anonymous":
        assert response.status_code == 302
        return
    if not sees_shared(role):
        assert response.status_code == 404
        assert b"shared work" not in response.content
        return
    assert response.status_code == 200
    html = response.content.decode()
    assert "shared work" in html and "team" in html  # shared with: the group's name
    # Only those who may act get the buttons and the answer form.
    assert ('id="cancel-button"' in html) == acts_on_shared(role)
    assert ("Waiting for your answer" in html) == acts_on_shared(role)
    assert ('name="answer"' in html) == acts_on_shared(role)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", ["/tasks/{pk}/log.txt", "/tasks/{pk}/attempts/1/log.txt"])
def test_log_downloads(world: World, role: str, url: str) -> None:
    shared = world.shared_task(Status.RUNNING)
    event_emit(
        type="execution.log",
        task_id=shared.pk,
        execution_id=shared.latest_execution_id,
        data={"level": "info", "message": "secret output"},
    )
    response = world.client(role).get(url.format(pk=shared.pk))
    if role == "anonymous":
        assert response.status_code == 401
    elif sees_shared(role):
        assert response.status_code == 200
        assert "INFO secret output" in body(response)
    else:
        assert response.status_code == 404
        assert b"secret" not in response.content


@pytest.mark.parametrize("role", ROLES)
def test_streams_of_an_invisible_task_are_404(world: World, role: str) -> None:
    """(Open streams are tested over a socket; here only refusals, which never open.)"""
    shared = world.shared_task()
    if sees_shared(role):
        return
    client = world.client(role)
    expected = 401 if role == "anonymous" else 404
    assert client.get(f"/tasks/{shared.pk}/stream/").status_code == expected
    assert client.get("/events/", {"task": shared.pk}).status_code == expected
    execution = shared.latest_execution_id
    assert client.get("/events/", {"execution": execution}).status_code == expected


# --- actions ------------------------------------------------------------------------


def _expect_action(
    world: World, role: str, task: Task, url: str, data: dict, *, allowed: bool, visible: bool
) -> None:
    """Without htmx then with it: allowed changes something (302 / 200), visible but not
    allowed is 403, invisible 404, anonymous to the login page; refusals change nothing."""
    client = world.client(role)
    before = snapshot(task)
    response = client.post(url, data)
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        assert snapshot(task) == before
        return
    if not visible:
        assert response.status_code == 404
        assert snapshot(task) == before
        assert client.post(url, data, **HTMX).status_code == 404
        assert snapshot(task) == before
        return
    if not allowed:
        assert response.status_code == 403
        assert snapshot(task) == before
        refused = client.post(url, data, **HTMX)
        assert refused.status_code == 403
        assert refused["HX-Reswap"] == "none"  # a message; nothing else on the page changes
        html = refused.content.decode()
        assert 'id="messages"' in html and 'hx-swap-oob="true"' in html
        assert "not act on it" in html or "only staff" in html
        assert "task-head" not in html
        assert snapshot(task) == before
        return
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.pk}/"
    assert snapshot(task) != before


@pytest.mark.parametrize("role", ROLES)
def test_cancel(world: World, role: str) -> None:
    task = world.shared_task(Status.PENDING)
    _expect_action(
        world,
        role,
        task,
        f"/tasks/{task.pk}/cancel/",
        {},
        allowed=acts_on_shared(role),
        visible=sees_shared(role),
    )


@pytest.mark.parametrize("role", ROLES)
def test_retry(world: World, role: str) -> None:
    task = world.shared_task(Status.FAILED)
    _expect_action(
        world,
        role,
        task,
        f"/tasks/{task.pk}/retry/",
        {},
        allowed=acts_on_shared(role),
        visible=sees_shared(role),
    )


@pytest.mark.parametrize("role", ROLES)
def test_answer(world: World, role: str) -> None:
    task = world.shared_task(Status.WAITING_FOR_INPUT)
    _expect_action(
        world,
        role,
        task,
        f"/tasks/{task.pk}/attempts/1/answer/",
        {"answer": "yes"},
        allowed=acts_on_shared(role),
        visible=sees_shared(role),
    )


@pytest.mark.parametrize("role", ROLES)
def test_retry_of_a_privileged_function_needs_staff(world: World, role: str) -> None:
    task = world.staff_task(Status.FAILED)
    _expect_action(
        world,
        role,
        task,
        f"/tasks/{task.pk}/retry/",
        {},
        allowed=may_retry_staff_task(role),
        visible=sees_staff_task(role),
    )
    if role == "manager":  # acts on every task, but is not staff
        refused = world.client(role).post(f"/tasks/{task.pk}/retry/")
        assert refused.status_code == 403 and b"only staff may run" in refused.content


@pytest.mark.parametrize("role", ROLES)
def test_an_htmx_action_answers_with_the_page_regions(world: World, role: str) -> None:
    if not acts_on_shared(role):
        return
    task = world.shared_task(Status.PENDING)
    response = world.client(role).post(f"/tasks/{task.pk}/cancel/", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="task-head"' in html and "Cancelled attempt 1." in html
    assert Task.objects.get(pk=task.pk).status == Status.CANCELLED


# --- the create form ----------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_create_form_offers_the_creators_own_groups_and_staff_functions_to_staff(
    world: World, role: str
) -> None:
    client = world.client(role)
    response = client.get("/tasks/new/", **HTMX)  # the form's fragment
    if role == "anonymous":
        assert response.status_code == 302
        return
    html = response.content.decode()
    in_team = role in {"creator", "member"}
    assert ('<select name="group"' in html) == in_team
    assert (">team<" in html) == in_team
    assert "elsewhere" not in html  # nobody here belongs to it
    assert (f'value="{SHELL}"' in html) == (role in ADMINS)

    before = Task.objects.count()
    shared = client.post(
        "/tasks/new/",
        {"function": PIPELINE, "title": "mine", "kwargs": "", "group": world.group.pk},
        **HTMX,
    )
    if in_team:
        assert shared.status_code == 200
        assert Task.objects.get(title="mine").group == world.group
    else:  # not one of their groups: a form error, nothing created
        assert shared.status_code == 422
        assert "Select a valid choice" in shared.content.decode()
        assert Task.objects.count() == before

    shell = client.post(
        "/tasks/new/", {"function": SHELL, "title": "sh", "kwargs": '{"command": "id"}'}, **HTMX
    )
    if role in ADMINS:
        assert shell.status_code == 200 and Task.objects.filter(title="sh").exists()
    else:
        assert shell.status_code == 422 and not Task.objects.filter(title="sh").exists()


# --- the admin ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_admin_lists_and_pages_follow_the_same_rules(world: World, role: str) -> None:
    shared = world.shared_task(Status.FAILED)
    staff = world.staff_task(Status.FAILED)
    worker = event_emit(type="worker.started", data={"worker_id": "w1"}, audience=" staff ")
    client = world.client(role)
    pages = [
        "/admin/tasks/task/",
        "/admin/tasks/execution/",
        "/admin/tasks/step/",
        "/admin/events/event/",
        f"/admin/tasks/task/{shared.pk}/change/",
        f"/admin/tasks/task/{staff.pk}/change/",
    ]
    if role not in ADMINS:  # not staff: a login page (the admin's), for every page
        login = "/accounts/login/" if role == "anonymous" else "/admin/login/"
        for page in pages:
            response = client.get(page)
            assert response.status_code == 302 and login in response["Location"]
        return
    tasks = client.get("/admin/tasks/task/").content.decode()
    assert ("shared work" in tasks) == (role == "superuser")
    assert "staff shell" in tasks
    executions = client.get("/admin/tasks/execution/").content.decode()
    assert (f"/admin/tasks/execution/{shared.latest_execution_id}/change/" in executions) == (
        role == "superuser"
    )
    assert f"/admin/tasks/execution/{staff.latest_execution_id}/change/" in executions
    events = client.get("/admin/events/event/").content.decode()
    shared_events = Event.objects.filter(task_id=shared.pk).values_list("pk", flat=True)
    staff_events = Event.objects.filter(task_id=staff.pk).values_list("pk", flat=True)
    assert all(f"/admin/events/event/{pk}/change/" in events for pk in staff_events)
    assert f"/admin/events/event/{worker.pk}/change/" in events  # staff see worker events
    assert any(f"/admin/events/event/{pk}/change/" in events for pk in shared_events) == (
        role == "superuser"
    )
    hidden = client.get(f"/admin/tasks/task/{shared.pk}/change/")
    if role == "superuser":
        assert hidden.status_code == 200
    else:  # outside the queryset: the admin says it does not exist
        assert hidden.status_code == 302 and b"shared work" not in hidden.content
        event = Event.objects.filter(task_id=shared.pk).first()
        assert client.get(f"/admin/events/event/{event.pk}/change/").status_code == 302
    page = client.get(f"/admin/tasks/task/{staff.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="function"' not in html and 'name="kwargs"' not in html  # read-only
    assert 'name="title"' in html
    assert client.get("/admin/tasks/task/add/").status_code == 403  # made by the services


@pytest.mark.parametrize("role", ["staff", "superuser"])
def test_admin_actions_act_only_on_what_the_user_may(world: World, role: str) -> None:
    shared = world.shared_task(Status.FAILED)
    staff = world.staff_task(Status.FAILED)
    client = world.client(role)
    response = client.post(
        "/admin/tasks/task/",
        {"action": "retry_tasks", "_selected_action": [str(shared.pk), str(staff.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    retried = {t.pk for t in Task.objects.filter(executions__number=2)}
    # Selected but outside the user's queryset: untouched.
    assert retried == ({shared.pk, staff.pk} if role == "superuser" else {staff.pk})


def test_admin_edit_cannot_change_a_tasks_function(world: World) -> None:
    staff = world.staff_task(Status.PENDING)
    client = world.client("superuser")
    response = client.post(
        f"/admin/tasks/task/{staff.pk}/change/",
        {
            "title": "renamed",
            "description": "",
            "max_attempts": "1",
            "function": "os.system",
            "kwargs": '{"command": "rm -rf /"}',
            "executions-TOTAL_FORMS": "0",
            "executions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    task = Task.objects.get(pk=staff.pk)
    assert (task.title, task.function, task.kwargs) == ("renamed", SHELL, {"command": "true"})


def test_admin_actions_need_the_model_permission(world: World) -> None:
    """A staff user without change permission is not offered the actions at all."""
    staff = world.users["staff"]
    staff.user_permissions.remove(*staff.user_permissions.filter(codename="change_task"))
    task = world.staff_task(Status.FAILED)
    client = world.client("staff")
    page = client.get("/admin/tasks/task/").content.decode()
    assert "retry_tasks" not in page
    client.post("/admin/tasks/task/", {"action": "retry_tasks", "_selected_action": [str(task.pk)]})
    assert task.executions.count() == 1
