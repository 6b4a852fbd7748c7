"""Server-side line charts: geometry for inline SVG (no JavaScript, no external assets).

Pure module (no Django): takes series of ``(time, value)`` points and returns coordinates and
ticks that a template draws as ``<polyline>``s. Values are alpha-like (a fixed y range, by
default -0.2..1, clamped), so charts of different scopes compare at a glance. A ``None`` value
(alpha undefined) breaks the line instead of dropping to zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

PALETTE = ("#2f5bd3", "#0f7b6c", "#8a4fd1", "#b7791f", "#b42318", "#1d2330")


@dataclass(frozen=True)
class Line:
    name: str
    color: str
    segments: tuple[str, ...]  # each an SVG "x,y x,y ..." points string
    dots: tuple[tuple[float, float], ...]  # isolated points (a segment of one point)
    last: float | None


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    threshold_y: float | None
    threshold: float | None
    empty: bool
    n_points: int = 0
    legend: tuple[tuple[str, str], ...] = field(default=())

    @property
    def right(self) -> int:
        return self.left + self.plot_width

    @property
    def bottom(self) -> int:
        return self.top + self.plot_height


def _fmt_time(moment: datetime, span_s: float) -> str:
    if span_s < 600:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%H:%M") if span_s < 36 * 3600 else moment.strftime("%m-%d")


def line_chart(
    series: Mapping[str, Sequence[tuple[datetime, float | None]]],
    *,
    threshold: float | None = None,
    width: int = 640,
    height: int = 220,
    y_min: float = -0.2,
    y_max: float = 1.0,
    margin: tuple[int, int, int, int] = (10, 12, 26, 40),  # top, right, bottom, left
    y_step: float = 0.2,
) -> Chart:
    """Lay out ``series`` (name -> time-ordered points) on a shared time axis."""
    top, right, bottom, left = margin
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [t for points in series.values() for t, _ in points]
    n_points = sum(1 for points in series.values() for _, v in points if v is not None)
    y_ticks = []
    steps = round((y_max - y_min) / y_step)
    for i in range(steps + 1):
        value = y_min + i * y_step
        y_ticks.append(Tick(top + plot_h * (1 - (value - y_min) / (y_max - y_min)), f"{value:.1f}"))

    def y_of(value: float) -> float:
        clamped = min(max(value, y_min), y_max)
        return round(top + plot_h * (1 - (clamped - y_min) / (y_max - y_min)), 1)

    threshold_y = y_of(threshold) if threshold is not None else None
    if not times or not n_points:
        return Chart(width, height, left, top, plot_w, plot_h, (), tuple(y_ticks), (), threshold_y, threshold, True)
    t0, t1 = min(times), max(times)
    span = (t1 - t0).total_seconds()

    def x_of(moment: datetime) -> float:
        if span <= 0:
            return round(left + plot_w / 2, 1)
        return round(left + plot_w * (moment - t0).total_seconds() / span, 1)

    lines = []
    for i, (name, points) in enumerate(series.items()):
        segments: list[str] = []
        dots: list[tuple[float, float]] = []
        current: list[tuple[float, float]] = []
        for moment, point in [*points, (t1, None)]:
            if point is None:
                if len(current) == 1:
                    dots.append(current[0])
                elif current:
                    segments.append(" ".join(f"{x},{y}" for x, y in current))
                current = []
                continue
            current.append((x_of(moment), y_of(point)))
        last = next((v for _, v in reversed(points) if v is not None), None)
        lines.append(Line(name, PALETTE[i % len(PALETTE)], tuple(segments), tuple(dots), last))
    x_ticks: tuple[Tick, ...]
    if span <= 0:
        x_ticks = (Tick(left + plot_w / 2, _fmt_time(t0, 0)),)
    else:
        x_ticks = tuple(
            Tick(round(left + plot_w * k / 4, 1), _fmt_time(t0 + (t1 - t0) * (k / 4), span)) for k in range(5)
        )
    return Chart(
        width,
        height,
        left,
        top,
        plot_w,
        plot_h,
        tuple(lines),
        tuple(y_ticks),
        x_ticks,
        threshold_y,
        threshold,
        False,
        n_points,
        tuple((line.name, line.color) for line in lines),
    )


def sparkline(
    points: Sequence[tuple[datetime, float | None]],
    *,
    threshold: float | None = None,
    width: int = 120,
    height: int = 28,
) -> Chart:
    """A small single-line chart without axes (table cells)."""
    return line_chart(
        {"alpha": points}, threshold=threshold, width=width, height=height, margin=(3, 3, 3, 3), y_step=1.2
    )
