"""Inline-SVG line charts of training curves (step on x, autoscaled y). Pure: no Django, no torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

COLORS = {"loss": "#b42318", "accuracy": "#2f5bd3", "eval_accuracy": "#0f7b6c"}


@dataclass(frozen=True)
class Series:
    key: str
    color: str
    points: str  # "x,y x,y ..." in SVG coordinates
    last: float | None


@dataclass(frozen=True)
class CurveChart:
    width: int
    height: int
    pad: int
    series: tuple[Series, ...]
    y_min: float
    y_max: float
    x_max: int
    empty: bool

    @property
    def bottom(self) -> int:
        return self.height - self.pad

    @property
    def right(self) -> int:
        return self.width - self.pad


def curve_chart(
    curve: Sequence[dict[str, Any]], keys: Sequence[str], width: int = 640, height: int = 220, pad: int = 36
) -> CurveChart:
    """Scale the chosen keys of ``curve`` (dicts with ``step``) into one chart sharing a y range.

    Points without a key are skipped (evaluation points are sparser than training steps).
    """
    values = [float(p[k]) for p in curve for k in keys if isinstance(p.get(k), (int, float))]
    steps = [int(p["step"]) for p in curve if "step" in p]
    if not values or not steps:
        return CurveChart(width, height, pad, (), 0.0, 1.0, 0, True)
    y_min, y_max = min(values + [0.0]), max(values + [1.0])
    span = (y_max - y_min) or 1.0
    x_max = max(steps) or 1
    plot_w, plot_h = width - 2 * pad, height - 2 * pad
    series = []
    for key in keys:
        pts = [(int(p["step"]), float(p[key])) for p in curve if isinstance(p.get(key), (int, float))]
        if not pts:
            continue
        coords = " ".join(
            f"{pad + plot_w * s / x_max:.1f},{pad + plot_h * (1 - (v - y_min) / span):.1f}" for s, v in pts
        )
        series.append(Series(key, COLORS.get(key, "#1d2330"), coords, pts[-1][1]))
    return CurveChart(width, height, pad, tuple(series), y_min, y_max, x_max, False)
