"""Server-rendered SVG charts: the geometry is computed here, the template draws rects.

No chart library reaches the browser; colours come from CSS classes (light and dark), so
the SVG carries no inline style (the CSP allows none).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.ops import FunctionDurations, MinuteCount
from tasks.web.forms import function_label
from tasks.web.templatetags import duration

WIDTH = 640
PLOT_LEFT = 36
PLOT_RIGHT = 8
PLOT_TOP = 10
PLOT_HEIGHT = 120
AXIS_HEIGHT = 22


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class ThroughputChart:
    width: int
    height: int
    succeeded: list[Bar]
    failed: list[Bar]
    x_ticks: list[Tick]
    y_max: Tick
    baseline: float
    total_succeeded: int
    total_failed: int
    plot_left: int = PLOT_LEFT
    plot_right: int = WIDTH - PLOT_RIGHT
    top: int = PLOT_TOP

    @property
    def summary(self) -> str:
        return (
            f"Finished per minute over the last hour: {self.total_succeeded} succeeded, "
            f"{self.total_failed} failed"
        )


def throughput_chart(minutes: list[MinuteCount]) -> ThroughputChart:
    """Stacked bars per minute: succeeded at the bottom, failed on top."""
    count = max(1, len(minutes))
    peak = max([m.succeeded + m.failed for m in minutes] + [1])
    plot_width = WIDTH - PLOT_LEFT - PLOT_RIGHT
    step = plot_width / count
    gap = min(2.0, step * 0.2)
    baseline = PLOT_TOP + PLOT_HEIGHT
    scale = PLOT_HEIGHT / peak
    succeeded: list[Bar] = []
    failed: list[Bar] = []
    for i, minute in enumerate(minutes):
        x = PLOT_LEFT + i * step + gap / 2
        label = minute.start.strftime("%H:%M")
        ok_h = minute.succeeded * scale
        bad_h = minute.failed * scale
        if minute.succeeded:
            succeeded.append(
                Bar(x, baseline - ok_h, step - gap, ok_h, f"{label}: {minute.succeeded} succeeded")
            )
        if minute.failed:
            top = baseline - ok_h - bad_h
            failed.append(Bar(x, top, step - gap, bad_h, f"{label}: {minute.failed} failed"))
    ticks = []
    for i, anchor in ((0, "start"), (count // 2, "middle"), (count - 1, "end")):
        if i < len(minutes):
            x = (
                PLOT_LEFT
                + i * step
                + (0 if anchor == "start" else step if anchor == "end" else step / 2)
            )
            ticks.append(Tick(x, baseline + 15, minutes[i].start.strftime("%H:%M"), anchor))
    return ThroughputChart(
        width=WIDTH,
        height=PLOT_TOP + PLOT_HEIGHT + AXIS_HEIGHT,
        succeeded=succeeded,
        failed=failed,
        x_ticks=ticks,
        y_max=Tick(PLOT_LEFT - 6, PLOT_TOP + 4, str(peak), "end"),
        baseline=baseline,
        total_succeeded=sum(m.succeeded for m in minutes),
        total_failed=sum(m.failed for m in minutes),
    )


@dataclass(frozen=True)
class DurationRow:
    function: str
    label: str
    y: float
    p50: Bar
    p95: Bar
    text: str
    text_x: float


@dataclass(frozen=True)
class DurationsChart:
    width: int
    height: int
    rows: list[DurationRow]
    label_width: int


ROW_HEIGHT = 34
LABEL_WIDTH = 120
TEXT_WIDTH = 250


def durations_chart(figures: list[FunctionDurations]) -> DurationsChart:
    """One row per function: the p95 bar with the p50 bar over it, and both as text."""
    longest = max([f.p95_ms for f in figures] + [1.0])
    plot_width = WIDTH - LABEL_WIDTH - TEXT_WIDTH
    rows = []
    for i, figure in enumerate(figures):
        y = i * ROW_HEIGHT + 6
        p95_w = max(1.0, figure.p95_ms / longest * plot_width)
        p50_w = max(1.0, figure.p50_ms / longest * plot_width)
        runs = f"{figure.count} run{'s' if figure.count != 1 else ''}"
        text = f"p50 {duration(figure.p50_ms)} · p95 {duration(figure.p95_ms)} · {runs}"
        rows.append(
            DurationRow(
                function=figure.function,
                label=function_label(figure.function),
                y=y,
                p95=Bar(LABEL_WIDTH, y, p95_w, 22, f"p95 {duration(figure.p95_ms)}"),
                p50=Bar(LABEL_WIDTH, y + 5, p50_w, 12, f"p50 {duration(figure.p50_ms)}"),
                text=text,
                text_x=LABEL_WIDTH + p95_w + 8,
            )
        )
    return DurationsChart(
        width=WIDTH,
        height=max(ROW_HEIGHT, len(rows) * ROW_HEIGHT + 6),
        rows=rows,
        label_width=LABEL_WIDTH,
    )
