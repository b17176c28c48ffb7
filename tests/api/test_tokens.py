"""API tokens' life cycle: made (page, command), shown once, stored hashed, used (API and
/events/, last use noted), revoked (the API refuses it, an open stream closes within one
heartbeat)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from io import StringIO

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tasks.api.models import ApiToken
from tasks.api.tokens import token_authenticate, token_create, token_revoke
from tests.servers import ROOT, process_env


def _api_ok(secret: str) -> int:
    return Client().get("/api/tasks/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code


# -- made and stored ---------------------------------------------------------------------


@pytest.mark.django_db
def test_only_a_hash_is_stored_and_the_prefix_is_visible(user):
    made = token_create(user=user, name="ci")
    token = ApiToken.objects.get()
    assert made.secret.startswith("tsk_") and len(made.secret) == 47
    assert token.digest == hashlib.sha256(made.secret.encode()).hexdigest()
    assert token.prefix == made.secret[:12]
    stored = [str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields]
    assert not any(made.secret in value for value in stored)
    assert token_authenticate(made.secret) == token
    assert token_authenticate(made.secret[:-1] + ("A" if made.secret[-1] != "A" else "B")) is None


@pytest.mark.django_db
def test_create_token_command_prints_it_once(user):
    out = StringIO()
    call_command("create_token", "alice", "--name", "nightly", stdout=out)
    secret = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert token.name == "nightly" and token.user == user
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert _api_ok(secret) == 200


@pytest.mark.django_db
def test_create_token_command_refuses_bad_input_and_makes_nothing(user):
    with pytest.raises(CommandError, match="^no user named 'nobody'$"):
        call_command("create_token", "nobody")
    with pytest.raises(CommandError, match="^name must not be empty$"):
        call_command("create_token", "alice", "--name", "  ")
    user.is_active = False
    user.save()
    with pytest.raises(CommandError, match="inactive"):
        call_command("create_token", "alice")
    assert not ApiToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_create_token_for_an_unknown_user_exits_non_zero_with_one_line():
    done = subprocess.run(
        [sys.executable, "manage.py", "create_token", "nobody"],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.strip() == "CommandError: no user named 'nobody'"


# -- the /tokens/ page ---------------------------------------------------------------------


@pytest.fixture
def page(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_tokens_page_needs_a_login(client):
    response = client.get("/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.post("/tokens/", {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_tokens_page_makes_a_token_and_shows_it_once(page, user):
    response = page.post("/tokens/", {"name": "runner <b>"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    token = ApiToken.objects.get()
    secret = html.split('<code id="new-token">', 1)[1].split("</code>", 1)[0]
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert "runner &lt;b&gt;" in html and "runner <b>" not in html  # escaped
    again = page.get("/tokens/").content.decode()
    assert secret not in again and f"{token.prefix}…" in again and "never" in again
    # Used: the page shows when.
    assert _api_ok(secret) == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert "never" not in page.get("/tokens/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "error"),
    [("", "This field is required."), ("a" * 101, "at most 100 characters"), ("\x07", "")],
)
def test_tokens_page_refuses_a_bad_name(page, name, error):
    response = page.post("/tokens/", {"name": name})
    assert response.status_code == 422
    assert error in response.content.decode()
    assert 'class="field-error"' in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_tokens_page_forms_need_the_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/tokens/", {"name": "x"}).status_code == 403
    token = token_create(user=user, name="kept").token
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None and ApiToken.objects.count() == 1


@pytest.mark.django_db
def test_revoke_own_token_only(page, user, django_user_model):
    mine = token_create(user=user, name="mine")
    bob = django_user_model.objects.create_user("bob")
    theirs = token_create(user=bob, name="theirs")
    assert page.post(f"/tokens/{theirs.token.pk}/revoke/").status_code == 404
    assert page.post("/tokens/999999/revoke/").status_code == 404
    assert _api_ok(theirs.secret) == 200
    response = page.post(f"/tokens/{mine.token.pk}/revoke/", follow=True)
    assert "Revoked “mine”" in response.content.decode()
    assert _api_ok(mine.secret) == 401
    assert "theirs" not in response.content.decode()  # only one's own tokens are listed
    again = page.post(f"/tokens/{mine.token.pk}/revoke/", follow=True)
    assert "was already revoked" in again.content.decode()


# -- /events/ with a bearer token, revoked mid-stream ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_bearer_token_on_events_and_revoked_mid_stream(start_server, open_streams, user):
    server = start_server(
        "daphne", env=process_env(EVENTS_HEARTBEAT_SECONDS="0.5", EVENTS_STREAM_MAX_SECONDS="300")
    )
    made = token_create(user=user, name="stream")
    bearer = {"Authorization": f"Bearer {made.secret}"}

    bad = open_streams(server.url, headers={"Authorization": "Bearer tsk_wrong"})
    assert bad.wait_status() == 401
    assert open_streams(server.url).wait_status() == 401  # no token, no session

    stream = open_streams(server.url, headers=bearer)
    assert stream.wait_status() == 200
    stream.wait(lambda s: len(s.frames) >= 1)  # the first frame: it is subscribed
    created = httpx.post(
        f"{server.url}/api/tasks/", json={"title": "followed"}, headers=bearer, timeout=30
    )
    assert created.status_code == 201
    task_id = created.json()["id"]
    stream.wait(lambda s: any(e["task_id"] == task_id for e in s.events("task.created")))
    made.token.refresh_from_db()
    assert made.token.last_used_at is not None  # used

    token_revoke(token=made.token)
    seen = len(stream.frames)
    stream.wait(lambda s: s.closed_by_server, timeout=30)
    after = stream.frames[seen:]
    # Closed at its next re-check, one heartbeat later: at most one keepalive in between,
    # and no `end` (it was not its lifetime that ran out).
    assert sum(1 for f in after if "keepalive" in f.comments) <= 1
    assert all(f.event != "end" for f in after)
    assert open_streams(server.url, headers=bearer).wait_status() == 401
