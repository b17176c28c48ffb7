"""stream_response with a FragmentRenderer: a snapshot first, then each event rendered
once per process and shared by every subscriber, as `event: fragment` frames."""

import asyncio
import threading

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.test import AsyncRequestFactory

from events.api import event_emit
from events.filters import EventFilter, FragmentRenderer
from events.hub import close_hub, get_hub
from events.models import Event
from events.streams import stream_response
from tests.events.sse_client import SSEParser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


class CountingRenderer:
    name = "tests.counting"

    def __init__(self) -> None:
        self.rendered: list[int] = []
        self.snapshots = 0
        self.lock = threading.Lock()

    def render(self, event: dict) -> str | None:
        with self.lock:
            self.rendered.append(event["id"])
        if event["data"].get("message") == "skip":
            return None
        count = Event.objects.filter(id__lte=event["id"]).count()  # it may query
        return f'<div id="e{event["id"]}" hx-swap-oob="true">\n{count} {event["type"]}\n</div>'

    def snapshot(self) -> str:
        self.snapshots += 1
        return f"<ul>\r\nsnapshot of {Event.objects.count()}\n</ul>"


@pytest_asyncio.fixture
async def hub():
    yield await get_hub()
    await close_hub()


async def open_fragments(renderer, user, *, query: str = "", headers: dict | None = None):
    request = AsyncRequestFactory().get(f"/page/{query}", headers=headers or {})

    async def auser():
        return user

    request.auser = auser
    response = await stream_response(request, event_filter=EventFilter(), renderer=renderer)
    assert response["Content-Type"].startswith("text/event-stream")
    return response.streaming_content.__aiter__()


async def read_frames(body, parser: SSEParser, count: int) -> list:
    frames: list = []
    while len(frames) < count:
        chunk = await asyncio.wait_for(body.__anext__(), 20)
        frames += parser.feed(chunk if isinstance(chunk, bytes) else chunk.encode())
    return frames


def emit(message: str) -> Event:
    return event_emit(
        type="execution.log", task_id=1, execution_id=1, data={"level": "info", "message": message}
    )


@pytest.mark.asyncio
async def test_snapshot_first_then_each_event_rendered_once_for_all(hub, user) -> None:
    renderer = CountingRenderer()
    assert isinstance(renderer, FragmentRenderer)
    await sync_to_async(emit)("before")
    streams = []
    for _ in range(3):
        body = await open_fragments(renderer, user, query="?task=5")
        parser = SSEParser()
        frames = await read_frames(body, parser, 2)
        assert (frames[0].retry, frames[0].id) == (2000, str(hub.cursor))  # its start
        snapshot = frames[1]
        assert snapshot.event == "fragment"
        assert snapshot.data == "<ul>\nsnapshot of 1\n</ul>"
        assert snapshot.id == str(hub.cursor)
        streams.append((body, parser))
    assert renderer.snapshots == 3

    emitted = [await sync_to_async(emit)(m) for m in ("one", "skip", "two")]
    for body, parser in streams:
        frames = await read_frames(body, parser, 2)
        assert [(f.event, f.id) for f in frames] == [
            ("fragment", str(emitted[0].pk)),
            ("fragment", str(emitted[2].pk)),
        ]
        assert (
            frames[0].data
            == f'<div id="e{emitted[0].pk}" hx-swap-oob="true">\n2 execution.log\n</div>'
        )
    # Once per event per process, whatever the number of subscribers.
    assert sorted(renderer.rendered) == [e.pk for e in emitted]
    for body, _ in streams:
        await body.aclose()
    assert not hub.subscribers()


@pytest.mark.asyncio
async def test_resume_replays_fragments_and_garbage_resets_with_a_snapshot(hub, user) -> None:
    renderer = CountingRenderer()
    first = await sync_to_async(emit)("a")
    second = await sync_to_async(emit)("b")
    body = await open_fragments(renderer, user, headers={"Last-Event-ID": str(first.pk)})
    parser = SSEParser()
    frames = await read_frames(body, parser, 2)
    assert (frames[0].retry, frames[0].id, frames[0].data) == (2000, str(first.pk), "")
    frames = [f for f in frames if f.data]
    assert [(f.event, f.id) for f in frames][:1] == [("fragment", str(second.pk))]
    assert renderer.snapshots == 0  # a usable resume id: no snapshot
    await body.aclose()

    body = await open_fragments(renderer, user, query="?last_event_id=nonsense")
    frames = [f for f in await read_frames(body, SSEParser(), 3) if f.data]
    assert [f.event for f in frames[:2]] == ["reset", "fragment"]
    assert frames[1].data.startswith("<ul>")
    await body.aclose()
