"""The streams' lean request path (events.lean) answers exactly as Django's full path:
the same statuses (401 without login, 414, 401 for a bad token, 429 over the per-user
limit), the same bodies and the same headers. Each server kind runs both paths side by
side on the same database (EVENTS_LEAN_STREAMS=0: the full path)."""

import httpx
import pytest

from events.lean import _is_lean
from tasks.api.tokens import token_create
from tests.servers import process_env

pytestmark = [pytest.mark.django_db(transaction=True)]

# Headers that differ between any two responses, whatever the path.
VARYING = {"date", "server", "transfer-encoding", "content-length"}


def test_the_stream_views_take_the_lean_path_and_pages_do_not() -> None:
    assert _is_lean("/events/") and _is_lean("/stream/") and _is_lean("/tasks/7/stream/")
    assert not _is_lean("/") and not _is_lean("/api/tasks/") and not _is_lean("/nowhere/")


def _answers(server, cookies, secret: str, open_streams) -> dict:
    """What a server answers to every refusal, and the head of a good stream."""
    seen: dict = {}
    anonymous = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    for path in ("/events/", "/stream/", "/tasks/1/stream/", "/"):
        response = anonymous.get(path)
        seen[path] = (response.status_code, response.headers.get("location"))
    seen["/events/ body"] = anonymous.get("/events/").text
    long = anonymous.get("/events/", params={"type": "x" * 9000})
    seen["long"] = (long.status_code, long.text)
    bad = anonymous.get("/events/", headers={"Authorization": "Bearer tsk_wrong"})
    seen["bad token"] = (bad.status_code, bad.text)
    token = open_streams(server.url, headers={"Authorization": f"Bearer {secret}"})
    assert token.wait_status() == 200
    token.wait(lambda s: s.frames)
    first = open_streams(server.url, cookies=cookies)
    assert first.wait_status() == 200
    first.wait(lambda s: s.frames)
    assert first.headers is not None
    seen["headers"] = {k: v for k, v in first.headers.items() if k not in VARYING}
    session = httpx.Client(base_url=server.url, timeout=30, cookies=cookies)
    over = session.get("/events/")  # the user's third stream
    seen["over the limit"] = (over.status_code, over.text)
    return seen


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_lean_and_full_paths_answer_alike(start_server, login, open_streams, user, kind) -> None:
    # A token's streams and a session's count apart (the limit is per user): the token's
    # stream and one session stream fill the limit of 2.
    env = {"EVENTS_MAX_STREAMS_PER_USER": "2"}
    lean = start_server(kind, env=process_env(**env))
    full = start_server(kind, env=process_env(EVENTS_LEAN_STREAMS="0", **env))
    cookies = login(lean)
    secret = token_create(user=user, name="lean").secret
    on_lean = _answers(lean, cookies, secret, open_streams)
    on_full = _answers(full, cookies, secret, open_streams)
    assert on_lean == on_full
    assert on_lean["/events/"][0] == 401 and on_lean["/"][0] == 302  # 401, login redirect
    assert on_lean["long"][0] == 414 and on_lean["bad token"][0] == 401
    assert on_lean["over the limit"][0] == 429
    headers = on_lean["headers"]
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["x-frame-options"] == "DENY"
