"""watch's own SSE parser against our server's framing (events.sse) and the tests'
reference parser: any events, any text, cut into any chunks, read back the same."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from events import sse
from tasks.api.watch import SSEParser
from tests.events.sse_client import SSEParser as ReferenceParser

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
EVENTS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["execution.log", "step.started", "task.status"]),
            "data": st.dictionaries(st.sampled_from(["message", "name", "error"]), TEXT),
        }
    ),
    min_size=1,
    max_size=6,
)


@given(events=EVENTS, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_every_frame_is_read_back_whatever_the_chunks(events, cuts):
    stream = sse.retry_frame(2000)
    expected = []
    for number, event in enumerate(events, start=1):
        event = {"id": number, "at": "2026-01-01T00:00:00+00:00", "task_id": 1, **event}
        event["execution_id"] = 2
        stream += sse.event_frame(event) + sse.comment_frame("keepalive")
        expected.append(event)
    stream += sse.control_frame("end", {"reason": "stream lifetime reached"}, event_id=99)
    raw = stream.encode()
    points = sorted({min(c, len(raw)) for c in cuts} | {0, len(raw)})
    ours, reference = SSEParser(), ReferenceParser()
    frames, reference_frames = [], []
    for start, end in zip(points, points[1:], strict=False):
        frames += ours.feed(raw[start:end])
        reference_frames += reference.feed(raw[start:end])

    data_frames = [f for f in frames if f.data]
    assert [json.loads(f.data) for f in data_frames[:-1]] == expected
    assert [f.event for f in data_frames] == [e["type"] for e in expected] + ["end"]
    assert [f.id for f in data_frames] == [str(e["id"]) for e in expected] + ["99"]
    assert ours.retry_ms == 2000
    assert [(f.event, f.data, f.id) for f in data_frames] == [
        (f.event, f.data, f.id) for f in reference_frames if f.data
    ]
