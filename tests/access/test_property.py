"""Property: whatever query string, path, form body and headers anyone sends to any URL,
as any kind of user, the answer is never a 5xx, nothing logs an error (no traceback,
also inside a stream's first frames), and a refusal (4xx) changes no row.

Deterministic (derandomize) and bounded (a few hundred examples in all), so that CI
runs the same cases every time in well under a minute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event
from tasks.models import Execution, Step, Task
from tasks.states import Status
from tests.access.conftest import ROLES, World, make_world

pytestmark = [pytest.mark.django_db]

PROFILE = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MORE = settings(PROFILE, max_examples=250)  # GETs: the most URLs and parameters
MORE = settings(PROFILE, max_examples=250)  # GETs: the most URLs and parameters

# Values people and programs type, and the ones that broke things before.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "2",
    "9" * 19,
    "9" * 20,
    "9" * 5000,
    "1e400",
    "NaN",
    "Infinity",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "a&status=failed",
    "a%26status%3Dfailed",
    "<script>alert(1)</script>",
    "\x00",
    "\ud800",
    "\u2028\u2029",
    "\r\nX-Injected: 1",
    "../../etc/passwd",
    "[" * 2000,
    '{"delay": NaN}',
    '{"ask": "\\ud800"}',
    '{"steps": 1, "delay": 0}',
    "tasks.examples.shell",
    "tasks.examples.pipeline",
    "os.system",
    "step.*",
    "*",
    "execution.status,task.*",
    "pending",
    "failed",
    "team",
]
_SURROGATE = re.compile("[\ud800-\udfff]")


def _wire(value: str) -> str:
    """What can travel in a request: text is sent as UTF-8, which has no lone surrogates
    (a client sends invalid bytes instead: see RAW_QUERIES)."""
    return _SURROGATE.sub("\ufffd", value)


# Mostly the known-nasty values, some anything at all.
values = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(NASTY),
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
).map(_wire)
# Bytes that are not UTF-8, percent-encoded as a client may send them.
RAW_QUERIES = ["", "q=%ff%fe", "created_to=%ED%A0%80", "task=%00", "status=%C0%AF", "%ff=1"]
PARAMS = [
    "status",
    "q",
    "function",
    "created_from",
    "created_to",
    "page",
    "type",
    "task",
    "execution",
    "last_event_id",
    "o",
    "p",
    "e",
    "all",
    "created_at__year",
    "created_at__month",
    "status__exact",
    "_changelist_filters",
]
LIST_PARAMS = ["status", "q", "function", "created_from", "created_to", "page"]
STREAM_PARAMS = ["type", "task", "execution", "last_event_id"]
ADMIN_PARAMS = ["o", "p", "e", "q", "created_at__year", "created_at__month", "status__exact"]
# The parameters each URL reads, so that most examples reach the code behind them.
PARAMS_OF = {
    "/": LIST_PARAMS,
    "/stream/": [*LIST_PARAMS, "last_event_id"],
    "/events/": STREAM_PARAMS,
    "/tasks/{task}/stream/": STREAM_PARAMS,
}


DATES = ["9999-12-31", "0001-01-01", "2026-02-30", "0000-00-00", "99999-01-01", "2026-11-21"]
NUMBERS = ["0", "-1", "1", "9" * 18, "9" * 19, "9" * 20, "9" * 5000, "1e400", "NaN", "\u0661"]
# A value for each parameter: mostly of its own kind (dates for dates...), some anything.
KIND = {
    "created_from": DATES,
    "created_to": DATES,
    "created_at__year": ["9999", "0", "99999999999999999999", "-1", "2026"],
    "created_at__month": ["13", "0", "99999999999999999999", "2"],
    "page": NUMBERS,
    "p": NUMBERS,
    "task": NUMBERS,
    "execution": NUMBERS,
    "last_event_id": NUMBERS,
    "type": ["step.*", "*", "nope", "execution.status,task.*", ",", "worker.*"],
    "status": ["pending", "failed", "nope", "waiting_for_input"],
    "o": ["1", "-1", "99", "1.2.3", "x"],
}


def value_for(name: str) -> st.SearchStrategy[str]:
    own = KIND.get(name)
    return (st.sampled_from(own) | st.sampled_from(own) | values) if own else values


def queries_for(template: str) -> st.SearchStrategy[dict[str, str]]:
    names = PARAMS_OF.get(template, ADMIN_PARAMS if template.startswith("/admin") else PARAMS)
    return st.fixed_dictionaries({}, optional={name: value_for(name) for name in names})


queries = st.dictionaries(st.sampled_from(PARAMS) | st.text(max_size=8), values, max_size=4)
FIELDS = ["title", "function", "kwargs", "description", "group", "answer", "action"]
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40
) | st.sampled_from(["true", "0", "9" * 30, "-5", ""])
headers = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_HX_REQUEST": header_text,
        "HTTP_LAST_EVENT_ID": header_text,
        "HTTP_HX_TARGET": header_text,
        "HTTP_HX_CURRENT_URL": header_text,
        "HTTP_ACCEPT": header_text,
        "HTTP_REFERER": header_text,
    },
)

GET_URLS = [
    "/",
    "/",
    "/stream/",
    "/events/",
    "/events/",
    "/tasks/new/",
    "/tasks/{task}/",
    "/tasks/{task}/log.txt",
    "/tasks/{task}/attempts/{n}/log.txt",
    "/tasks/{task}/stream/",
    "/stream/",
    "/events/",
    "/metrics",
    "/accounts/login/",
    "/admin/",
    "/admin/tasks/task/",
    "/admin/tasks/task/{task}/change/",
    "/admin/tasks/execution/",
    "/admin/tasks/execution/{execution}/change/",
    "/admin/tasks/step/",
    "/admin/events/event/",
]
POST_URLS = [
    "/tasks/new/",
    "/tasks/{task}/cancel/",
    "/tasks/{task}/retry/",
    "/tasks/{task}/attempts/{n}/answer/",
    "/admin/tasks/task/",
    "/admin/tasks/execution/",
    "/admin/tasks/task/{task}/change/",
]
ids = st.one_of(
    st.sampled_from(["shared", "staff", "others"]),
    st.integers(min_value=0, max_value=2**70).map(str),
)


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_errors_logged() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    shown = [f"{r.name}: {r.getMessage()}" for r in handler.records]
    assert not handler.records, shown


def rows() -> tuple[Any, ...]:
    """Every row an action could change, in a comparable form."""
    return (
        sorted(Task.objects.values_list("id", "title", "status", "function", "group_id")),
        sorted(Execution.objects.values_list("id", "status", "answer", "cancel_requested_at")),
        Step.objects.count(),
        Event.objects.count(),
    )


def first_chunk(response: Any) -> None:
    """Streams: run them up to their first frames (the snapshot), then close."""
    if not getattr(response, "streaming", False):
        return

    async def read() -> None:
        body = response.streaming_content
        try:
            await body.__anext__()
        except StopAsyncIteration:
            pass
        finally:
            await body.aclose()

    if response.is_async:
        async_to_sync(read)()
    else:
        response.close()


@pytest.fixture
def world(django_user_model, settings) -> Iterator[World]:
    settings.EVENTS_MAX_STREAMS_PER_USER = 10_000
    built = make_world(django_user_model)
    built.tasks = {  # type: ignore[attr-defined]
        "shared": built.shared_task(Status.WAITING_FOR_INPUT),
        "staff": built.staff_task(Status.FAILED),
        "others": built.own_task("other", Status.RUNNING),
    }
    yield built


def url_for(world: World, template: str, task: str, n: str) -> str:
    tasks = world.tasks  # type: ignore[attr-defined]
    pk = str(tasks[task].pk) if task in tasks else task
    execution = str(tasks[task].latest_execution_id) if task in tasks else task
    return template.format(task=pk, n=n, execution=execution)


def check(response: Any, before: tuple[Any, ...], role: str) -> None:
    assert response.status_code < 500
    first_chunk(response)
    body = b"" if getattr(response, "streaming", False) else response.content
    assert b"Traceback" not in body
    if response.status_code >= 400 or role == "anonymous":
        assert rows() == before


@MORE
@given(
    role=st.sampled_from(ROLES),
    request=st.sampled_from(GET_URLS).flatmap(lambda t: st.tuples(st.just(t), queries_for(t))),
    task=ids,
    n=st.sampled_from(["1", "2", "0", "99999999999999999999"]),
    extra=headers,
    raw=st.sampled_from(RAW_QUERIES),
)
def test_any_get_as_anyone(world, role, request, task, n, extra, raw) -> None:
    template, query = request
    client = world.client(role)
    url = url_for(world, template, task, n)
    query_string = "&".join(part for part in (urlencode(query), raw) if part)
    before = rows()
    with no_errors_logged():
        response = client.get(url, QUERY_STRING=query_string, **extra)
        check(response, before, role)


@PROFILE
@given(
    role=st.sampled_from(ROLES),
    template=st.sampled_from(POST_URLS),
    task=ids,
    n=st.sampled_from(["1", "2", "99999999999999999999"]),
    query=queries,
    body=bodies,
    extra=headers,
    selected=st.lists(ids, max_size=3),
)
def test_any_post_as_anyone(world, role, template, task, n, query, body, extra, selected) -> None:
    client = world.client(role)
    url = url_for(world, template, task, n)
    if selected:
        tasks = world.tasks  # type: ignore[attr-defined]
        body["_selected_action"] = [str(tasks[s].pk) if s in tasks else s for s in selected]
    if query:
        url = f"{url}?{urlencode(query)}"
    before = rows()
    with no_errors_logged():
        response = client.post(url, body, **extra)
        check(response, before, role)


@PROFILE
@given(
    role=st.sampled_from(ROLES),
    segments=st.lists(
        st.sampled_from(["tasks", "attempts", "log.txt", "stream", "events", "admin", "new"])
        | values.filter(lambda v: "/" not in v and v not in {".", ".."}),
        min_size=1,
        max_size=5,
    ),
    trailing=st.booleans(),
    method=st.sampled_from(["get", "post", "put", "delete", "head", "options"]),
)
def test_any_path_as_anyone(world, role, segments, trailing, method) -> None:
    from urllib.parse import quote

    client = world.client(role)
    path = "/" + "/".join(quote(s, safe="") for s in segments) + ("/" if trailing else "")
    before = rows()
    with no_errors_logged():
        response = getattr(client, method)(path)
        check(response, before, role)
