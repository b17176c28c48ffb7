"""Prometheus metrics of the streams, one set per server process (see /metrics)."""

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

STREAMS_OPEN = Gauge("taskstream_streams_open", "SSE streams open in this process")
EVENTS_RECEIVED = Counter(
    "taskstream_events_received",
    "Events the hub received, by source (layer, local commit, log read)",
    ["source"],
)
_RECEIVED_BY_SOURCE = {s: EVENTS_RECEIVED.labels(s) for s in ("layer", "local", "log")}


def received(source: str) -> Counter:
    """The received counter of one source (`labels()` looks it up under a lock each call)."""
    return _RECEIVED_BY_SOURCE.get(source) or EVENTS_RECEIVED.labels(source)


EVENTS_DELIVERED = Counter(
    "taskstream_events_delivered", "Event frames written to SSE streams (all subscribers)"
)
QUEUE_DEPTH = Gauge(
    "taskstream_subscriber_queue_depth", "Events waiting in subscriber queues", ["stat"]
)
LOG_FALLBACKS = Counter(
    "taskstream_subscriber_log_fallbacks",
    "Times a subscriber's buffer overflowed and it switched to reading the log",
)
RESETS = Counter("taskstream_stream_resets", "reset events sent, by reason", ["reason"])
GAP_SKIPS = Counter(
    "taskstream_hub_gap_skips", "Holes in the id sequence the hub gave up waiting for"
)
LOG_READS = Counter("taskstream_hub_log_reads", "Log pages the hub read (gaps and ticks)")
DELIVERY_LATENCY = Histogram(
    "taskstream_event_delivery_latency_seconds",
    "From an event's publish on commit (or its `at` when read from the log) to its frame "
    "being written to a stream",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CATCH_UP_PAGES = Counter(
    "taskstream_catch_up_pages",
    "Pages a stream behind the live feed read, by source (memory: the hub's recent events)",
    ["source"],
)


def observe_latencies(now: float, committed: Iterable[float]) -> None:
    """DELIVERY_LATENCY.observe(now - c) for each c, with one counter update per bucket
    touched instead of two per delivery (at 100k deliveries/s those were ~10% of the
    loop). Relies on prometheus_client's Histogram internals; without them, one by one."""
    histogram = DELIVERY_LATENCY
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for c in committed:
            histogram.observe(max(0.0, now - c))
        return
    counts: dict[int, int] = {}
    seconds = 0.0
    for c in committed:
        latency = now - c if now > c else 0.0
        seconds += latency
        index = bisect_left(bounds, latency)  # the first bound >= latency, as observe()
        counts[index] = counts.get(index, 0) + 1
    if not counts:
        return
    total.inc(seconds)
    for index, n in counts.items():
        buckets[index].inc(n)
