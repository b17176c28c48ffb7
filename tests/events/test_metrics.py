"""/metrics: Prometheus text for a staff session or the bearer token, nobody else."""

import re

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.servers import login_cookies, process_env

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "a-metrics-token"
NAMES = [
    "taskstream_streams_open",
    "taskstream_events_received_total",
    "taskstream_events_delivered_total",
    "taskstream_subscriber_queue_depth",
    "taskstream_subscriber_log_fallbacks_total",
    "taskstream_stream_resets_total",
    "taskstream_event_delivery_latency_seconds_bucket",
]


def value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match, sample
    return float(match.group(1))


def test_metrics_access_and_content(start_server, user, staff_user, open_streams) -> None:
    from events.api import event_emit

    server = start_server("uvicorn", env=process_env(METRICS_TOKEN=TOKEN))
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        wrong = anonymous.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    alice = login_cookies(server.url, "alice", PASSWORD)
    with httpx.Client(base_url=server.url, cookies=alice) as client:
        response = client.get("/metrics")
        assert response.status_code == 403
        assert response.text.strip() == "metrics are for staff only"

    # Some traffic: a replayed event and a reset.
    event = event_emit(type="task.created", task_id=1, data={"title": "t", "status": "pending"})
    replay = open_streams(server.url, cookies=alice, params={"last_event_id": str(event.pk - 1)})
    replay.wait(replay.has_ids([event.pk]))
    reset = open_streams(server.url, cookies=alice, params={"last_event_id": "junk"})
    reset.wait(lambda s: any(f.event == "reset" for f in s.frames))

    root = login_cookies(server.url, "root", PASSWORD)
    with httpx.Client(base_url=server.url, cookies=root) as client:
        staff = client.get("/metrics")
    assert staff.status_code == 200
    assert staff.headers["content-type"].startswith("text/plain")
    with httpx.Client(base_url=server.url) as client:
        bearer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200
    text = bearer.text
    for name in NAMES:
        assert name in text, name
    assert value(text, "taskstream_streams_open") == 2
    assert value(text, "taskstream_events_delivered_total") >= 1
    assert value(text, 'taskstream_stream_resets_total{reason="unknown id"}') == 1
    assert value(text, 'taskstream_events_received_total{source="log"}') >= 1
    assert value(text, "taskstream_event_delivery_latency_seconds_count") >= 1
