"""The streams by role, over a real socket against a real server: `/events/` (all, and
`task=`), the list's `/stream/` and a task's `/tasks/<id>/stream/` carry only what each
user may see, and counts count only that.

Absence is proven without waiting for nothing: events arrive in id order, so once a
stream has received a later event it was meant to get (a sentinel: a task of the
viewer's own, made after everything else), anything earlier it did not receive, it
never will.
"""

from __future__ import annotations

import re

import pytest

from events.api import event_emit
from events.models import Event
from tasks.access import workers_audience
from tasks.services import execution_cancel
from tasks.states import Status
from tests.access.conftest import (
    ROLES,
    SEE_ALL,
    World,
    make_world,
    sees_shared,
)
from tests.conftest import PASSWORD
from tests.servers import login_cookies, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

PEOPLE = ROLES[1:]


def fragments(stream) -> list[str]:
    return [f.data for f in stream.frames if f.event == "fragment"]


@pytest.fixture
def server(start_server):
    # A change made by this test process reaches the server through its safety tick.
    return start_server("daphne", env=process_env(EVENTS_SAFETY_TICK_SECONDS="0.2"))


def test_each_stream_carries_only_what_its_user_may_see(
    server, django_user_model, open_streams
) -> None:
    world: World = make_world(django_user_model)
    shared = world.shared_task(Status.PENDING)
    others = world.own_task("other")
    cookies = {role: login_cookies(server.url, role, PASSWORD) for role in PEOPLE}
    since = Event.objects.order_by("-id").values_list("id", flat=True).first()
    params = {"last_event_id": since}

    firehose = {r: open_streams(server.url, cookies=cookies[r], params=params) for r in PEOPLE}
    by_task = {
        r: open_streams(server.url, cookies=cookies[r], params={"task": shared.pk, **params})
        for r in PEOPLE
    }
    lists = {r: open_streams(server.url, "/stream/", cookies=cookies[r]) for r in PEOPLE}
    pages = {
        r: open_streams(server.url, f"/tasks/{shared.pk}/stream/", cookies=cookies[r])
        for r in PEOPLE
    }
    anonymous = [
        open_streams(server.url, path, params=query)
        for path, query in [
            ("/events/", {}),
            ("/stream/", {}),
            (f"/tasks/{shared.pk}/stream/", {}),
            ("/events/", {"task": shared.pk}),
        ]
    ]
    assert [s.wait_status() for s in anonymous] == [401] * 4
    for role in PEOPLE:
        assert firehose[role].wait_status() == 200
        assert lists[role].wait_status() == 200
        expected = 200 if sees_shared(role) else 404
        assert by_task[role].wait_status() == expected, role
        assert pages[role].wait_status() == expected, role
    for role in PEOPLE:  # every list has its snapshot: it shows the rows its user sees
        lists[role].wait(lambda s: len(fragments(s)) >= 1)
        first = fragments(lists[role])[0]
        assert (f'id="task-{shared.pk}"' in first) == sees_shared(role), role
        assert (f'id="task-{others.pk}"' in first) == (role in {"other"} | SEE_ALL), role

    # What happens: the shared task is cancelled, a worker starts, then each person
    # makes a task of their own (their sentinel).
    execution_cancel(execution=shared.latest_execution)
    worker = event_emit(type="worker.started", data={"worker_id": "w"}, audience=workers_audience())
    sentinels = {role: world.own_task(role, title=f"sentinel of {role}") for role in PEOPLE}
    sentinel_ids = {
        role: Event.objects.get(task_id=task.pk, type="task.created").pk
        for role, task in sentinels.items()
    }
    shared_ids = set(
        Event.objects.filter(task_id=shared.pk, id__gt=since).values_list("id", flat=True)
    )
    assert shared_ids

    for role in PEOPLE:
        stream = firehose[role]
        stream.wait(stream.has_ids([sentinel_ids[role]]))
        got = set(stream.ids())
        assert (shared_ids <= got) == sees_shared(role), role
        assert not (shared_ids & got) or sees_shared(role), role
        assert (worker.pk in got) == (role in {"staff"} | SEE_ALL), role
        # Nobody but those who see everything gets another person's sentinel.
        foreign = {sentinel_ids[r] for r in PEOPLE if r != role}
        if role in SEE_ALL:
            stream.wait(stream.has_ids(list(foreign)))
        else:
            assert not (foreign & got), role

    for role in PEOPLE:
        if sees_shared(role):
            stream = by_task[role]
            stream.wait(stream.has_ids(sorted(shared_ids)))
            assert set(stream.ids()) == shared_ids  # the task's events and nothing else
            page = pages[role]
            page.wait(lambda s: any("badge-cancelled" in f for f in fragments(s)[1:]))

    visible = {"creator": 2, "member": 2, "other": 2, "staff": 1}  # the rest: all 9
    last_sentinel = sentinels[PEOPLE[-1]]
    for role in PEOPLE:
        stream = lists[role]
        mine = sentinels[role] if role not in SEE_ALL else last_sentinel
        row = f'id="task-{mine.pk}"'
        stream.wait(lambda s, row=row: any(row in f for f in fragments(s)))
        seen = "".join(fragments(stream))
        assert (f'id="task-{shared.pk}"' in seen) == sees_shared(role), role
        for other_role in PEOPLE:
            if other_role != role and role not in SEE_ALL:
                assert f'id="task-{sentinels[other_role].pk}"' not in seen, (role, other_role)
        # The counts of its latest render count only the visible tasks.
        last = [f for f in fragments(stream) if 'data-status="all"' in f][-1]
        count = re.search(r'data-status="all">([^<]*)<', last)
        assert count is not None
        assert count.group(1) == str(visible.get(role, 2 + len(PEOPLE))), role


def test_a_worker_starting_clears_every_persons_banner_but_not_their_event_stream(
    server, django_user_model, open_streams
) -> None:
    """worker.* events are staff's (contract: Workers), yet they move everyone's banner:
    a plain user's page stream gets the banner redrawn, their /events/ never the event."""
    from tasks.fleet import worker_register

    world: World = make_world(django_user_model)
    world.own_task("other")  # pending, and no worker: the banner shows
    cookies = login_cookies(server.url, "other", PASSWORD)
    since = Event.objects.order_by("-id").values_list("id", flat=True).first()
    header = open_streams(server.url, "/header/stream/", cookies=cookies)
    firehose = open_streams(server.url, cookies=cookies, params={"last_event_id": since})
    assert header.wait_status() == 200 and firehose.wait_status() == 200
    header.wait(lambda s: len(fragments(s)) >= 1)
    assert "No worker is running" in fragments(header)[0]

    worker_register(
        worker_id="w-banner", kind="worker", host="h", pid=1, concurrency=1, lease_seconds=60
    )
    started = Event.objects.get(type="worker.started", data__worker_id="w-banner")
    header.wait(lambda s: any(f.id == str(started.pk) for f in s.frames))
    banner = fragments(header)[-1]
    assert 'id="worker-banner"' in banner and "No worker is running" not in banner
    assert "w-banner" not in "".join(fragments(header))  # the worker's data stays staff's

    sentinel = world.own_task("other", title="sentinel")
    sentinel_id = Event.objects.get(task_id=sentinel.pk, type="task.created").pk
    firehose.wait(firehose.has_ids([sentinel_id]))
    assert started.pk not in firehose.ids()
