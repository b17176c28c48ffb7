"""A client that stops reading does not slow the others, cannot grow the server's
memory without bound, and, once it reads again, gets everything (or a `reset`)."""

import socket

import pytest

from events.models import Event
from tests.events.sse_client import SSEParser
from tests.servers import process_env

pytestmark = pytest.mark.django_db(transaction=True)

EVENT_BYTES = 8 * 1024
BATCH = 500
BATCHES = 16  # 8,000 events, about 64 MiB of event JSON to every subscriber
MEMORY_BOUND = 40 * 1024 * 1024  # what the server may grow by while the client is stalled


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def insert_events(count: int, start: int) -> list[int]:
    """Committed events that were never published: the server's hub reads them from the
    log on its safety tick (this process and the server do not share a channel layer)."""
    events = Event.objects.bulk_create(
        Event(
            type="execution.log",
            task_id=1,
            execution_id=1,
            data={"level": "info", "message": f"{start + i:08d}" + "x" * EVENT_BYTES},
        )
        for i in range(count)
    )
    return [e.pk for e in events]


def open_stalled(url: str, cookies: dict) -> tuple[socket.socket, bytes]:
    """GET /events/ over HTTP/1.0 (no chunking), read up to the first frame, then stop."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    sock.sendall(f"GET /events/ HTTP/1.0\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode())
    sock.settimeout(30)
    received = b""
    while b"retry:" not in received:
        data = sock.recv(4096)
        assert data, received
        received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1") and b" 200 " in head.split(b"\r\n")[0]
    return sock, body


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_stalled_client_keeps_memory_bounded_and_catches_up(
    start_server, login, open_streams, kind
) -> None:
    server = start_server(kind, env=process_env(EVENTS_SAFETY_TICK_SECONDS="0.2"))
    assert server.process is not None
    cookies = login(server)
    healthy = open_streams(server.url, cookies=cookies)
    healthy.wait(lambda s: s.frames)
    stalled, stalled_body = open_stalled(server.url, cookies)

    ids = insert_events(BATCH, 0)  # warm up the server's code paths
    healthy.wait(healthy.has_ids(ids), timeout=60)
    baseline = rss(server.process.pid)
    peak = baseline

    def healthy_has(wanted: list[int]):
        check = healthy.has_ids(wanted)

        def predicate(stream) -> bool:
            nonlocal peak
            peak = max(peak, rss(server.process.pid))
            return check(stream)

        return predicate

    for batch in range(1, BATCHES):
        ids += insert_events(BATCH, batch * BATCH)
        # The healthy client keeps receiving while the other one reads nothing.
        healthy.wait(healthy_has(ids), timeout=120)
    assert healthy.ids() == ids
    grown = peak - baseline
    assert grown < MEMORY_BOUND, f"{kind} grew by {grown / 2**20:.1f} MiB with a stalled client"
    print(f"{kind}: RSS {baseline / 2**20:.1f} MiB, peak +{grown / 2**20:.1f} MiB")

    # It reads again: everything, in order, or a reset.
    parser = SSEParser()
    got: list[int] = []
    reset = False
    data = stalled_body
    stalled.settimeout(60)
    while True:
        for frame in parser.feed(data):
            reset = reset or frame.event == "reset"
            if frame.event == "execution.log":
                got.append(int(frame.id))
        if reset or (got and got[-1] == ids[-1]):
            break
        data = stalled.recv(1 << 20)
        assert data, "server closed the stalled stream"
    stalled.close()
    assert got == sorted(set(got))
    if not reset:
        assert got == ids
