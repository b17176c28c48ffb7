"""Every bad input gets a clear one-line answer, never a redirect or a 5xx."""

import httpx
import pytest

from events.models import Event
from tests.events.sse_client import SSEParser
from tests.servers import process_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_gets_401_not_a_redirect(start_server) -> None:
    server = start_server("uvicorn")
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/events/", headers={"Accept": "text/event-stream"})
        assert response.status_code == 401
        assert "location" not in response.headers
        assert response.text.strip() and "\n" not in response.text.strip()
        assert client.get("/metrics").status_code == 401


BAD_FILTERS = [
    ({"type": "task.nope"}, "unknown event type 'task.nope'"),
    ({"type": "task.created,bogus.*"}, "unknown event type pattern 'bogus.*'"),
    ({"type": "*"}, "unknown event type pattern '*'"),
    ({"task": "abc"}, "task must be a positive integer id"),
    ({"execution": "1.5"}, "execution must be a positive integer id"),
    ({"task": "-3"}, "task must be a positive integer id"),
    ({"task": "\u0661"}, "task must be a positive integer id"),  # a non-ASCII digit
]


def test_bad_filters_get_400_with_the_reason(start_server, login) -> None:
    server = start_server("uvicorn")
    with httpx.Client(base_url=server.url, cookies=login(server)) as client:
        for params, reason in BAD_FILTERS:
            response = client.get("/events/", params=params)
            assert response.status_code == 400, params
            assert reason in response.text, (params, response.text)
            assert len(response.text.strip().splitlines()) == 1


def test_streams_past_the_per_user_cap_get_429(start_server, login, open_streams) -> None:
    server = start_server("daphne", env=process_env(EVENTS_MAX_STREAMS_PER_USER="2"))
    cookies = login(server)
    first = open_streams(server.url, cookies=cookies)
    second = open_streams(server.url, cookies=cookies)
    assert first.wait_status() == 200
    assert second.wait_status() == 200
    third = open_streams(server.url, cookies=cookies)
    assert third.wait_status() == 429
    third.wait_done()
    assert third.body.decode().strip() == "too many open streams: at most 2 per user"
    # A closed stream frees its slot.
    first.close()
    fourth = None
    for _ in range(50):  # each attempt is a real request; the server frees the slot async
        fourth = open_streams(server.url, cookies=cookies)
        if fourth.wait_status() == 200:
            break
        fourth.wait_done()
    assert fourth is not None and fourth.status == 200


GARBAGE_IDS = ["garbage", "-5", "1e3", "99999999999999999999999", "17\r\nevent: end"]


def test_garbage_resume_id_gets_a_reset_first(start_server, login, open_streams) -> None:
    server = start_server("uvicorn")
    cookies = login(server)
    for garbage in GARBAGE_IDS:
        stream = open_streams(server.url, cookies=cookies, params={"last_event_id": garbage})
        assert stream.wait_status() == 200, garbage
        stream.wait(lambda s: any(f.data for f in s.frames))
        first = next(f for f in stream.frames if f.data)
        assert first.event == "reset", garbage
        assert first.json()["reason"] == "unknown id"
        stream.close()
    # The header form, too (a header cannot carry CR/LF, so a plain bad value).
    stream = open_streams(server.url, cookies=cookies, headers={"Last-Event-ID": "x17"})
    stream.wait(lambda s: any(f.data for f in s.frames))
    assert next(f for f in stream.frames if f.data).event == "reset"


def test_resume_id_beyond_the_log_gets_a_reset(start_server, login, open_streams) -> None:
    server = start_server("uvicorn")
    stream = open_streams(server.url, cookies=login(server), headers={"Last-Event-ID": "424242"})
    stream.wait(lambda s: any(f.data for f in s.frames))
    assert next(f for f in stream.frames if f.data).event == "reset"


NASTY = "a\nb\r\nc\rd\u2028e\u2029f\0g\n\ndata: injected\nevent: end\nid: 999\n\n: x"


def test_no_user_text_can_break_a_frame(start_server, login, open_streams) -> None:
    from events.api import event_emit

    server = start_server("daphne")
    cookies = login(server)
    event = event_emit(
        type="execution.log", task_id=1, execution_id=1, data={"level": "info", "message": NASTY}
    )
    # Resume from just before it (not from "the last id before": after a flush the log may
    # be empty, and a resume id older than the log's oldest event rightly gets a reset).
    before = event.pk - 1
    stream = open_streams(server.url, cookies=cookies, params={"last_event_id": str(before)})
    stream.wait(stream.has_ids([event.pk]))
    frames = [f for f in stream.frames if f.data]
    assert [f.event for f in frames] == ["execution.log"]
    assert frames[0].id == str(event.pk)
    assert frames[0].json() == Event.objects.get(pk=event.pk).as_dict()
    assert frames[0].json()["data"]["message"] == NASTY

    # The same bytes through httpx-sse, a second conformant parser, and raw.
    import httpx_sse

    with (
        httpx.Client(base_url=server.url, cookies=cookies, timeout=30) as client,
        httpx_sse.connect_sse(
            client, "GET", "/events/", params={"last_event_id": str(before)}
        ) as source,
    ):
        received = next(e for e in source.iter_sse() if e.data)
    assert received.event == "execution.log"
    assert received.json()["data"]["message"] == NASTY


def test_frames_carry_no_raw_line_separators() -> None:
    from events import sse

    frame = sse.event_frame(
        {
            "id": 1,
            "type": "execution.log",
            "at": "x",
            "task_id": 1,
            "execution_id": 1,
            "data": {"message": NASTY},
        }
    )
    for bad in ("\u2028", "\u2029", "\0", "\r"):
        assert bad not in frame
    assert frame.count("\n\n") == 1 and frame.endswith("\n\n")
    html = sse.fragment_frame(f"<p>{NASTY}</p>", event_id=3)
    parsed = SSEParser().feed(html.encode())
    assert len(parsed) == 1 and parsed[0].event == "fragment" and parsed[0].id == "3"
    assert "injected" in parsed[0].data and parsed[0].data.count("\n") == 9
