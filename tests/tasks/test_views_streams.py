"""The dashboard's two streams over a real socket: snapshot on an unusable resume id,
fragments of current state, escaped, and 401 for strangers."""

import pytest

from tests.conftest import PASSWORD
from tests.events.sse_client import Stream
from tests.factories import make_execution, make_task
from tests.servers import login_cookies, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def streams():
    opened: list[Stream] = []

    def open_stream(*args, **kwargs) -> Stream:
        opened.append(Stream(*args, **kwargs))
        return opened[-1]

    yield open_stream
    for stream in opened:
        stream.close()


def fragments(stream: Stream) -> list[str]:
    return [f.data for f in stream.frames if f.event == "fragment"]


def test_list_stream_unknown_id_gets_reset_then_snapshot(start_server, user, streams):
    task = make_task(XSS)
    server = start_server("daphne")
    cookies = login_cookies(server.url, "alice", PASSWORD)
    stream = streams(server.url, "/stream/", cookies=cookies, params={"last_event_id": 10**9})
    stream.wait(lambda s: any(f.event == "fragment" for f in s.frames))
    kinds = [f.event for f in stream.frames if f.data]
    assert kinds[:2] == ["reset", "fragment"]
    snapshot = fragments(stream)[0]
    assert '<template><tbody id="task-rows" hx-swap-oob="true">' in snapshot
    assert f'id="task-{task.pk}"' in snapshot
    assert XSS not in snapshot and "&lt;img src=x onerror=alert(1)&gt;" in snapshot


def test_task_stream_snapshot_then_live_fragments(start_server, user, streams):
    execution = make_execution("running", title=XSS)
    server = start_server("daphne", env=process_env(EVENTS_SAFETY_TICK_SECONDS="0.3"))
    cookies = login_cookies(server.url, "alice", PASSWORD)
    stream = streams(server.url, f"/tasks/{execution.task_id}/stream/", cookies=cookies)
    stream.wait(lambda s: len(fragments(s)) >= 1)
    for region in ("head", "progress", "prompt", "steps", "executions", "log"):
        assert f'id="task-{region}"' in fragments(stream)[0]
    # A change made by another process reaches this server through its safety tick.
    execution.transition("waiting_for_input", prompt=f"Approve {XSS}?")
    stream.wait(lambda s: any("Waiting for your answer" in f for f in fragments(s)))
    latest = fragments(stream)[-1]
    assert "Approve &lt;img src=x onerror=alert(1)&gt;?" in latest and XSS not in latest
    assert "csrfmiddlewaretoken" not in latest


def test_streams_refuse_strangers_without_a_redirect(start_server, streams):
    task = make_task("t")
    server = start_server("daphne")
    for path in ("/stream/", f"/tasks/{task.pk}/stream/"):
        assert streams(server.url, path).wait_status() == 401
