"""The contract's errors on /api/: `{"detail": "<one line>"}` with 400 bad input (ninja's
422 included), 401, 403, 404, 409 and 429; bad input changes nothing; never a 5xx
(hypothesis feeds it what it likes)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event
from tasks.api.models import ApiToken
from tasks.api.tokens import token_revoke
from tasks.models import Execution, Step, Task
from tasks.states import Status
from tests.api.conftest import one_line_detail
from tests.factories import make_execution

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def raw_post(client: Client, path: str, body: str, headers: dict) -> object:
    return client.post(path, body, content_type="application/json", **headers)


@pytest.fixture
def alice(people):
    return people["creator"]


# -- 400 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "title: Field required"),
        ({"title": ""}, "title: String should have at least 1 character"),
        ({"title": 5}, "title: Input should be a valid string"),
        ({"title": "t", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"title": "t", "kwargs": [1]}, "kwargs: Input should be a valid dictionary"),
        ({"title": "   "}, "title must not be empty"),
        ({"title": "two\nlines"}, "title must be one line without control characters"),
        ({"title": "t", "function": "os.system"}, "unknown function 'os.system'; one of: "),
        ({"title": "t", "kwargs": {"nope": 1}}, "arguments do not fit tasks.examples.pipeline"),
        ({"title": "t", "group": 999}, "group 999 is not one of your groups"),
    ],
)
def test_bad_task_bodies_are_400_and_create_nothing(api, alice, body, detail):
    response = api.post("/api/tasks/", body, alice)
    assert response.status_code == 400
    assert one_line_detail(response).startswith(detail)
    assert not Task.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{bad", "the body is not a JSON object we can read: Expecting property name"),
        ('{"title": NaN}', "the body is not a JSON object we can read: NaN is not JSON"),
        ('{"title": "a\\u0000b"}', "must not contain NUL"),
        ('{"title": "\\ud800"}', "must not contain lone surrogates"),
        ('{"title": "t", "kwargs": {"k\\u0000": 1}}', "must not contain NUL"),
        ("[1, 2]", "Input should be a valid dictionary"),
    ],
)
def test_unreadable_bodies_are_400(client, alice, raw, detail):
    response = raw_post(client, "/api/tasks/", raw, alice.headers)
    assert response.status_code == 400
    assert detail in one_line_detail(response)
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"page": "0"}, "page: Input should be greater than or equal to 1"),
        ({"per_page": "101"}, "per_page: Input should be less than or equal to 100"),
        ({"status": "done"}, "status: Input should be 'pending'"),
        ({"created_from": "yesterday"}, "created_from: a date is YYYY-MM-DD"),
        ({"created_to": "1e9"}, "created_to: a date is YYYY-MM-DD"),
        ({"created_to": "2026-02-30"}, "created_to: Input should be a valid date"),
        ({"q": "a\x00b"}, "the query parameter q must not contain NUL"),
    ],
)
def test_bad_list_filters_are_400(api, alice, params, detail):
    response = api.get("/api/tasks/", alice, **params)
    assert response.status_code == 400
    assert one_line_detail(response).startswith(detail)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"after": "-1"}, "after: Input should be greater than or equal to 0"),
        ({"after": "x"}, "after: Input should be a valid integer"),
        ({"limit": "0"}, "limit: Input should be greater than or equal to 1"),
        ({"type": "task.nope"}, "unknown event type 'task.nope'"),
        ({"type": "zzz.*"}, "unknown event type pattern 'zzz.*'"),
        ({"task": "0"}, "task: Input should be greater than or equal to 1"),
    ],
)
def test_bad_event_queries_are_400(api, alice, params, detail):
    response = api.get("/api/events/", alice, **params)
    assert response.status_code == 400
    assert one_line_detail(response).startswith(detail)


def test_empty_answer_is_400_and_changes_nothing(api, people):
    execution = make_execution(Status.WAITING_FOR_INPUT, created_by=people["creator"].user)
    for body, detail in [
        ({"answer": "  "}, "the answer must not be empty"),
        ({"answer": "x" * 10_001}, "answer: String should have at most 10000 characters"),
        ({}, "answer: Field required"),
    ]:
        response = api.post(f"/api/executions/{execution.pk}/answer/", body, people["creator"])
        assert response.status_code == 400
        assert one_line_detail(response) == detail
    execution.refresh_from_db()
    assert execution.answer == "" and execution.status == Status.WAITING_FOR_INPUT


def test_an_id_that_is_not_a_number_is_400(api, alice):
    response = api.get("/api/tasks/abc/", alice)
    assert response.status_code == 400
    assert (
        one_line_detail(response)
        == "task_id: Input should be a valid integer, unable to parse string as an integer"
    )


# -- 401 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Bearer tsk_not-a-real-token", "Bearer ", "Bearer x" * 100, "bearer tsk_ünïcode"],
)
def test_bad_tokens_are_401(client, header):
    response = client.get("/api/tasks/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert one_line_detail(response) == "invalid or revoked API token"


def test_a_revoked_token_is_401(api, alice):
    assert api.get("/api/tasks/", alice).status_code == 200
    token_revoke(token=ApiToken.objects.get(user=alice.user))
    response = api.get("/api/tasks/", alice)
    assert response.status_code == 401
    assert one_line_detail(response) == "invalid or revoked API token"


def test_a_token_of_an_inactive_user_is_401(api, alice):
    alice.user.is_active = False
    alice.user.save()
    assert api.get("/api/tasks/", alice).status_code == 401


def test_anonymous_openapi_document_and_index_are_401_json(client):
    for path in ("/api/openapi.json", "/api/"):
        response = client.get(path)
        assert response.status_code == 401
        assert "authentication required" in one_line_detail(response)
    # The docs page is for people: to the login page.
    assert client.get("/api/docs").status_code == 302


# -- 403: CSRF on the session -----------------------------------------------------------


def test_session_needs_the_csrf_token_on_unsafe_methods(people):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["creator"].user)
    assert client.get("/api/tasks/").status_code == 200  # safe: no token needed
    refused = client.post("/api/tasks/", {"title": "x"}, content_type="application/json")
    assert refused.status_code == 403
    assert one_line_detail(refused).startswith("CSRF check failed")
    assert not Task.objects.exists()
    client.get("/tokens/")  # any page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    made = client.post(
        "/api/tasks/", {"title": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert made.status_code == 201


def test_bearer_requests_need_no_csrf_token(people):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/tasks/", {"title": "x"}, content_type="application/json", **people["creator"].headers
    )
    assert response.status_code == 201


# -- 404 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/tasks/999999/",
        f"/api/tasks/{2**63}/",
        "/api/tasks/99999999999999999999999999/",
        "/api/tasks/-1/",
        "/api/nothing/here/",
    ],
)
def test_unknown_is_404_json(api, alice, path):
    response = api.get(path, alice)
    assert response.status_code == 404
    one_line_detail(response)


def test_a_method_the_endpoint_does_not_take_is_405_json(client, alice):
    for method, path in [("put", "/api/tasks/"), ("get", "/api/tasks/1/retry/")]:
        response = getattr(client, method)(path, **alice.headers)
        assert response.status_code == 405
        assert "not allowed here; use" in one_line_detail(response)


# -- 409 -------------------------------------------------------------------------------


def test_transitions_the_machine_refuses_are_409_and_change_nothing(api, people):
    alice = people["creator"]
    pending = make_execution(Status.PENDING, created_by=alice.user)
    done = make_execution(Status.SUCCEEDED, created_by=alice.user)
    cases = [
        (f"/api/tasks/{pending.task_id}/retry/", None, "only a failed or cancelled task"),
        (f"/api/executions/{done.pk}/cancel/", None, "it cannot be cancelled"),
        (f"/api/executions/{pending.pk}/answer/", {"answer": "y"}, "only an execution waiting"),
        (f"/api/executions/{pending.pk}/report/", {"status": "running"}, "run by a worker"),
    ]
    before = Event.objects.count()
    for path, body, detail in cases:
        response = api.post(path, body, alice)
        assert response.status_code == 409, (path, response.content)
        assert detail in one_line_detail(response)
    assert Event.objects.count() == before
    pending.refresh_from_db()
    assert pending.status == Status.PENDING


# -- 429 -------------------------------------------------------------------------------


def test_over_the_rate_limit_is_429(api, alice, settings):
    settings.API_RATE_LIMIT = "3/min"
    for _ in range(3):
        assert api.get("/api/tasks/", alice).status_code == 200
    response = api.get("/api/tasks/", alice)
    assert response.status_code == 429
    assert one_line_detail(response).startswith("too many requests: at most 3/min per user")
    assert int(response["Retry-After"]) >= 1


# -- never a 5xx -------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
TASK_KEYS = st.sampled_from(["title", "function", "kwargs", "description", "group", "x"])
FUNCTIONS = st.sampled_from(
    ["tasks.examples.pipeline", "tasks.examples.shell", "external", "os.system", ""]
)


def _task_body():
    return st.dictionaries(TASK_KEYS, JSON | FUNCTIONS, max_size=5) | JSON


@FUZZ
@given(body=_task_body())
def test_any_task_body_is_201_or_a_one_line_4xx(api, alice, body):
    before = (Task.objects.count(), Event.objects.count())
    response = api.post("/api/tasks/", body, alice)
    assert response.status_code in (201, 400, 403), response.content
    if response.status_code == 201:
        assert Task.objects.count() == before[0] + 1
    else:
        one_line_detail(response)
        assert (Task.objects.count(), Event.objects.count()) == before


REPORT_KEYS = st.sampled_from(
    ["status", "step", "error", "result", "progress", "log", "ask", "heartbeat", "level"]
)
REPORT_VALUES = JSON | st.sampled_from(
    ["running", "succeeded", "failed", "cancelled", "started", "completed", True]
)


@FUZZ
@given(
    body=st.dictionaries(REPORT_KEYS, REPORT_VALUES, max_size=3) | JSON,
    status=st.sampled_from([Status.PENDING, Status.RUNNING, Status.WAITING_FOR_INPUT]),
)
def test_any_report_is_200_or_a_one_line_4xx_that_changes_nothing(api, people, body, status):
    alice = people["creator"]
    execution = make_execution(status, created_by=alice.user, function="external")
    before = (Event.objects.count(), Step.objects.count())
    response = api.post(f"/api/executions/{execution.pk}/report/", body, alice)
    assert response.status_code in (200, 400, 409), response.content
    if response.status_code != 200:
        one_line_detail(response)
        assert (Event.objects.count(), Step.objects.count()) == before
        assert Execution.objects.get(pk=execution.pk).status == status


QUERY = st.dictionaries(
    st.sampled_from(["status", "q", "function", "created_from", "created_to", "page", "per_page"]),
    st.text(max_size=12) | st.integers().map(str) | st.dates().map(str),
    max_size=4,
)


@FUZZ
@given(params=QUERY)
def test_any_list_query_is_200_or_400(api, alice, params):
    response = api.get("/api/tasks/", alice, **params)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        one_line_detail(response)


EVENT_QUERY = st.dictionaries(
    st.sampled_from(["after", "type", "task", "execution", "limit"]),
    st.text(max_size=12)
    | st.integers(min_value=-5, max_value=2**64).map(str)
    | st.sampled_from(["step.*", "task.created,execution.status", "*", ""]),
    max_size=4,
)


@FUZZ
@given(params=EVENT_QUERY)
def test_any_event_query_is_200_400_or_404(api, alice, params):
    response = api.get("/api/events/", alice, **params)
    assert response.status_code in (200, 400, 404), response.content
    body = response.json()
    if response.status_code == 200:
        assert body["last_id"] >= 0
        assert json.dumps(body)  # plain JSON
    else:
        one_line_detail(response)
