"""People of the access matrix, their tokens, and a JSON client for the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from tasks.api.tokens import token_create
from tests.events.conftest import login, open_streams  # noqa: F401  (shared fixtures)

# Every kind of user of the contract's access matrix, and what each may do with a task
# that "creator" made and shared with the group "team".
KINDS = ("anonymous", "creator", "member", "other", "viewer", "manager", "staff", "superuser")
SEES = {"creator", "member", "viewer", "manager", "superuser"}
ACTS = {"creator", "member", "manager", "superuser"}
# manage_all implies seeing (tasks.access: as Django's change permission implies view);
# otherwise the permission would grant nothing beyond a person's own and group tasks.


@dataclass
class Person:
    kind: str
    user: Any  # None for anonymous
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """The rate limit counts per user id in Django's cache; ids repeat from test to test."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def team(db) -> Group:
    return Group.objects.create(name="team")


@pytest.fixture
def people(django_user_model, team) -> dict[str, Person]:
    def make(name: str, **extra: Any) -> Any:
        # No password (no slow hashing): tokens and force_login are how they come in.
        return django_user_model.objects.create_user(name, f"{name}@example.com", None, **extra)

    creator = make("creator")
    member = make("member")
    creator.groups.add(team)
    member.groups.add(team)
    viewer = make("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_all_tasks"))
    manager = make("manager")
    manager.user_permissions.add(Permission.objects.get(codename="manage_all_tasks"))
    users = {
        "creator": creator,
        "member": member,
        "other": make("other"),
        "viewer": viewer,
        "manager": manager,
        "staff": make("staff", is_staff=True),
        "superuser": make("superuser", is_staff=True, is_superuser=True),
    }
    found = {"anonymous": Person("anonymous", None, None)}
    for kind, user in users.items():
        found[kind] = Person(kind, user, token_create(user=user, name="tests").secret)
    return found


class Api:
    """The API through Django's test client, JSON in and out."""

    def __init__(self, client: Client | None = None) -> None:
        self.client = client or Client()

    def get(self, path: str, person: Person | None = None, **params: Any) -> Any:
        headers = person.headers if person else {}
        return self.client.get(path, params, **headers)

    def post(self, path: str, body: Any = None, person: Person | None = None, **extra: Any) -> Any:
        headers = person.headers if person else {}
        data = "" if body is None else body
        return self.client.post(path, data, content_type="application/json", **headers, **extra)


@pytest.fixture
def api() -> Api:
    return Api()


def one_line_detail(response: Any) -> str:
    """The contract's error body: exactly {"detail": "<one line>"}."""
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert "\n" not in body["detail"] and "\r" not in body["detail"]
    return str(body["detail"])
