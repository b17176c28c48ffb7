"""The people of the access tests, one per kind the contract names, and their tasks.

    anonymous   no session
    creator     made the shared task, shared with their group "team" (plain user)
    member      another member of "team"
    other       a plain user with a task of their own
    viewer      holds tasks.view_all_tasks
    manager     holds tasks.manage_all_tasks
    staff       is_staff with the admin's model permissions on tasks and events, nothing
                else: sees their own tasks (a privileged shell task) and worker.* events
    superuser

Each expectation below is the contract's "Access" section written out per role.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.test import Client

from tasks.models import Task
from tasks.services import task_create
from tasks.states import Status
from tests.conftest import PASSWORD

# Real SSE over a socket, servers on one Redis, a logged-in session (tests/events).
from tests.events.conftest import login, open_streams, redis_env  # noqa: F401
from tests.factories import execution_move

ROLES = ["anonymous", "creator", "member", "other", "viewer", "manager", "staff", "superuser"]
SEE_ALL = {"viewer", "manager", "superuser"}
ACT_ALL = {"manager", "superuser"}
SHELL = "tasks.examples.shell"
PIPELINE = "tasks.examples.pipeline"


def sees_shared(role: str) -> bool:
    """The shared task: made by creator, shared with member's group."""
    return role in {"creator", "member"} | SEE_ALL


def acts_on_shared(role: str) -> bool:
    return role in {"creator", "member"} | ACT_ALL


def sees_staff_task(role: str) -> bool:
    """The staff user's own privileged (shell) task."""
    return role in {"staff"} | SEE_ALL


def may_retry_staff_task(role: str) -> bool:
    """Acting on it is not enough: retrying a shell task needs staff too."""
    return role in {"staff", "superuser"}


@dataclass
class World:
    users: dict[str, Any]
    group: Group
    clients: dict[str, Client] = field(default_factory=dict)

    def client(self, role: str) -> Client:
        if role not in self.clients:
            client = Client()
            if role != "anonymous":
                client.force_login(self.users[role])
            self.clients[role] = client
        return self.clients[role]

    def user(self, role: str) -> Any:
        return None if role == "anonymous" else self.users[role]

    def shared_task(self, status: str = Status.PENDING, **kwargs: Any) -> Task:
        """A task of creator's, shared with the group, moved to `status`."""
        task = task_create(
            title=kwargs.pop("title", "shared work"),
            created_by=self.users["creator"],
            group=self.group,
            **kwargs,
        )
        return _move(task, status)

    def own_task(self, role: str, status: str = Status.PENDING, **kwargs: Any) -> Task:
        task = task_create(
            title=kwargs.pop("title", f"{role}'s work"), created_by=self.users[role], **kwargs
        )
        return _move(task, status)

    def staff_task(self, status: str = Status.FAILED) -> Task:
        """The staff user's shell task (only staff may create or retry it)."""
        return self.own_task(
            "staff", status, title="staff shell", function=SHELL, kwargs={"command": "true"}
        )


def _move(task: Task, status: str) -> Task:
    assert task.latest_execution is not None
    execution_move(task.latest_execution, status, prompt="proceed?")
    task.refresh_from_db()
    return task


@functools.cache
def _password_hash() -> str:
    """PASSWORD hashed once per run (the real hasher, so that servers accept a login)."""
    return make_password(PASSWORD)


def make_world(django_user_model: Any) -> World:
    group = Group.objects.create(name="team")
    Group.objects.create(name="elsewhere")
    perms = {
        p.codename: p
        for p in Permission.objects.filter(content_type__app_label__in=["tasks", "events"])
    }
    users: dict[str, Any] = {}
    for role in ROLES[1:]:
        users[role] = django_user_model.objects.create(
            username=role,
            email=f"{role}@example.com",
            password=_password_hash(),
            is_superuser=role == "superuser",
            is_staff=role == "superuser",
        )
    users["creator"].groups.add(group)  # a task is shared with one of its creator's groups
    users["member"].groups.add(group)
    users["viewer"].user_permissions.add(perms["view_all_tasks"])
    users["manager"].user_permissions.add(perms["manage_all_tasks"])
    staff = users["staff"]
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(
        *(
            perms[c]
            for c in (
                "view_task",
                "change_task",
                "delete_task",
                "view_execution",
                "change_execution",
                "view_step",
                "view_event",
            )
        )
    )
    return World(users=users, group=group)


@pytest.fixture
def world(django_user_model) -> World:
    return make_world(django_user_model)
