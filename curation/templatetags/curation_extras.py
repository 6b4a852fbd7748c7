"""Formatting for the curation pages: alpha values, rates, durations."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


@register.filter
def alpha(value: Any) -> str:
    """Krippendorff's alpha with three decimals; "n/a" when undefined."""
    number = _number(value)
    return "n/a" if number is None else f"{number:.3f}"


@register.filter
def signed(value: Any) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:+.3f}"


@register.filter
def percent(value: Any) -> str:
    """A rate in [0, 1] as a whole percentage; "n/a" when undefined."""
    number = _number(value)
    return "n/a" if number is None else f"{100 * number:.0f}%"


@register.filter
def seconds(value: Any) -> str:
    """Milliseconds as seconds (or minutes when long)."""
    number = _number(value)
    if number is None:
        return "n/a"
    s = number / 1000.0
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


@register.filter
def alpha_class(value: Any, threshold: Any) -> str:
    """CSS class for an alpha against the threshold: ok, low, or na."""
    number, limit = _number(value), _number(threshold)
    if number is None:
        return "alpha-na"
    if limit is None:
        return "alpha-value"
    return "alpha-ok" if number >= limit else "alpha-low"


@register.filter
def preference_text(value: str) -> str:
    labels = {
        "A_CLEARLY": "A clearly better",
        "A_SLIGHTLY": "A slightly better",
        "B_SLIGHTLY": "B slightly better",
        "B_CLEARLY": "B clearly better",
        "UNDECIDABLE": "Can't decide",
        "DISCARD": "Discard",
    }
    return labels.get(value, value)
