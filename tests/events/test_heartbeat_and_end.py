"""Heartbeat comments on an idle stream, then `end` after the lifetime, then close; the
resume points a stream gives: its first frame (`retry:` with the `id:` it starts after)
and its `end` (the `id:` it reached), so that a client that follows `end` and reconnects
with the ids it was given receives every matching event exactly once."""

import threading

import pytest

from events.api import event_emit
from events.models import Event
from tests.servers import process_env

pytestmark = pytest.mark.django_db(transaction=True)

QUIET = 99  # a task id no event of these tests is about, unless a test says so


@pytest.fixture(autouse=True)
def quiet_task(transactional_db: None) -> None:
    """`/events/?task=N` is 404 for a task that does not exist: QUIET is a real task."""
    from tasks.models import Task

    Task.objects.create(pk=QUIET, title="quiet", function="tasks.examples.pipeline")


# Commits of this test process reach an in-memory-layer server through its safety tick.
FAST_TICK = {"EVENTS_SAFETY_TICK_SECONDS": "0.1"}


def emit(task_id: int, n: int = 1) -> list[int]:
    return [
        event_emit(
            type="execution.log", task_id=task_id, execution_id=task_id, data={"message": str(i)}
        ).pk
        for i in range(n)
    ]


def log_end() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_idle_stream_gets_keepalives_then_end_then_closes(
    start_server, login, open_streams, kind
) -> None:
    env = process_env(EVENTS_HEARTBEAT_SECONDS="0.2", EVENTS_STREAM_MAX_SECONDS="1.5")
    server = start_server(kind, env=env)
    emit(1)  # the log's end is an id of the log, not the id counter of an emptied one
    end_of_log = log_end()
    stream = open_streams(server.url, cookies=login(server))
    stream.wait(lambda s: s.closed_by_server, timeout=30)
    frames = stream.frames
    assert (frames[0].retry, frames[0].id, frames[0].data) == (2000, str(end_of_log), "")
    keepalives = [f for f in frames if "keepalive" in f.comments]
    assert len(keepalives) >= 2
    assert frames[-1].event == "end"
    assert frames[-1].id == str(end_of_log)  # nothing happened: it ends where it started
    assert [f.event for f in frames if f.data] == ["end"]


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_first_frame_carries_the_position_the_stream_starts_after(
    start_server, login, open_streams, kind
) -> None:
    server = start_server(kind, env=process_env(**FAST_TICK))
    cookies = login(server)
    earlier, later = emit(1, 2)

    live = open_streams(server.url, cookies=cookies, params={"task": str(QUIET)})
    live.wait(lambda s: s.frames)
    first = live.frames[0]
    assert (first.retry, first.id, first.data) == (2000, str(later), "")
    # A WHATWG client takes the id from that data-less frame: its resume point.
    assert live.last_event_id == str(later)

    resumed = open_streams(server.url, cookies=cookies, headers={"Last-Event-ID": str(earlier)})
    resumed.wait(resumed.has_ids([later]))
    assert (resumed.frames[0].retry, resumed.frames[0].id) == (2000, str(earlier))
    assert resumed.ids() == [later]

    by_parameter = open_streams(server.url, cookies=cookies, params={"last_event_id": earlier})
    by_parameter.wait(by_parameter.has_ids([later]))
    assert by_parameter.frames[0].id == str(earlier)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_end_carries_the_position_reached_with_and_without_matching_events(
    start_server, login, open_streams, follow, kind
) -> None:
    """The reported loss: a stream on a quiet task got no event before `end`; without an
    id to resend, its reconnection started live and lost what was committed meanwhile."""
    lifetime = 3.0  # long enough for the other task's events to reach the hub before `end`
    env = process_env(EVENTS_STREAM_MAX_SECONDS=str(lifetime), **FAST_TICK)
    server = start_server(kind, env=env)
    cookies = login(server)
    emit(1)
    watcher = follow(server.url, cookies=cookies)  # sees what the server's hub has seen
    watcher.wait(lambda w: w.streams and w.streams[0].frames)

    quiet = open_streams(server.url, cookies=cookies, params={"task": str(QUIET)})
    quiet.wait(lambda s: s.frames)
    start = quiet.frames[0].id
    assert start == str(log_end())
    others = emit(1, 3)
    watcher.wait(lambda w: others[-1] in w.ids())
    assert not quiet.closed_by_server, f"the stream ended before the hub saw {others}"
    quiet.wait(lambda s: s.closed_by_server, timeout=lifetime + 30)
    assert [f.event for f in quiet.frames if f.data] == ["end"]  # nothing matched
    end = quiet.frames[-1]
    assert end.event == "end"
    assert end.id == str(others[-1])  # the other task's events moved its position
    assert quiet.last_event_id == end.id

    # Disconnected: the quiet task's events commit, with others around them.
    gap = [*emit(QUIET, 2), *emit(1), *emit(QUIET)]
    matching = [i for i in gap if Event.objects.get(pk=i).task_id == QUIET]
    again = open_streams(
        server.url,
        cookies=cookies,
        params={"task": str(QUIET)},
        headers={"Last-Event-ID": quiet.last_event_id},
    )
    again.wait(again.has_ids(matching))
    assert again.frames[0].id == end.id
    assert again.ids() == matching  # each exactly once, in order
    after = emit(1, 2)  # not matching: they still move the position `end` carries
    watcher.wait(lambda w: after[-1] in w.ids())
    assert not again.closed_by_server, f"the stream ended before the hub saw {after}"
    again.wait(lambda s: s.closed_by_server, timeout=lifetime + 30)
    assert again.ids() == matching
    assert again.frames[-1].event == "end"
    assert again.frames[-1].id == str(after[-1])
    assert not [f for f in quiet.frames + again.frames if f.event == "reset"]


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_following_through_many_ends_while_events_commit_gets_each_exactly_once(
    start_server, login, follow, kind
) -> None:
    """Short lifetimes and a tiny subscriber buffer (so streams fall behind to the log and
    end with items queued) while a writer commits a quiet task's events among others."""
    env = process_env(EVENTS_STREAM_MAX_SECONDS="0.3", EVENTS_SUBSCRIBER_BUFFER="2", **FAST_TICK)
    server = start_server(kind, env=env)
    cookies = login(server)
    emit(1)
    follower = follow(server.url, cookies=cookies, params={"task": str(QUIET)})
    follower.wait(lambda f: f.streams and f.streams[0].frames)
    written: list[int] = []

    def write() -> None:
        from django.db import connection

        try:
            for round_ in range(40):
                written.extend(emit(1, 3))
                if round_ % 4 == 0:
                    written.extend(emit(QUIET, 1 + round_ % 3))
                if round_ % 10 == 9:  # pause: whole streams with nothing for the quiet task
                    ends = follower.ends()
                    follower.wait(lambda f, ends=ends: f.ends() >= ends + 2)
        finally:
            connection.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(120)
    assert not writer.is_alive()
    quiet = Event.objects.filter(pk__in=written, task_id=QUIET).order_by("id")
    matching = list(quiet.values_list("id", flat=True))
    follower.wait(lambda f: matching[-1] in f.ids(), timeout=60)
    assert follower.ids() == matching
    assert follower.ends() >= 4
    assert "" not in follower.resent_ids()[1:]  # every reconnection had an id to resend


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_end_during_a_catch_up_from_the_log_resumes_after_the_last_event_sent(
    start_server, login, follow, kind
) -> None:
    """A stream that reads the log (a resume) and ends before it is done must end at the
    last event it sent, not at the live position: the rest is still to be read."""
    server = start_server(kind, env=process_env(EVENTS_STREAM_MAX_SECONDS="0.1"))
    cookies = login(server)
    before = emit(1)[0]
    Event.objects.bulk_create(
        Event(type="execution.log", task_id=QUIET if i % 2 else 1, data={"i": i})
        # Enough that reading it outlasts the 0.1 s lifetime even on the lean path.
        for i in range(16000)
    )
    matching = list(Event.objects.filter(task_id=QUIET, id__gt=before).values_list("id", flat=True))
    follower = follow(
        server.url, cookies=cookies, params={"task": str(QUIET)}, last_event_id=str(before)
    )
    follower.wait(lambda f: matching[-1] in f.ids(), timeout=90)
    assert follower.ids() == matching
    assert len(follower.streams) >= 2, "one stream read it all: nothing ended a catch-up"


def test_a_log_emptied_by_pruning_still_resumes_from_the_id_it_gave(
    start_server, login, open_streams
) -> None:
    """With every event pruned, a live stream starts after the id counter (the next id is
    not taken for a hole); given back on a reconnection, that id is a known position, not
    a `reset` (which would make every page re-snapshot at each `end` of a quiet system)."""
    server = start_server("daphne", env=process_env(**FAST_TICK))
    cookies = login(server)
    counter = emit(1)[0]
    Event.objects.all().delete()
    live = open_streams(server.url, cookies=cookies, params={"task": str(QUIET)})
    live.wait(lambda s: s.frames)
    assert live.frames[0].id == str(counter)
    live.close()
    again = open_streams(
        server.url,
        cookies=cookies,
        params={"task": str(QUIET)},
        headers={"Last-Event-ID": live.last_event_id},
    )
    again.wait(lambda s: s.frames)
    later = emit(QUIET)
    again.wait(again.has_ids(later))
    assert [(f.event, f.id) for f in again.frames] == [
        ("message", str(counter)),  # the first frame: retry and id, no data
        ("execution.log", str(later[0])),
    ]
