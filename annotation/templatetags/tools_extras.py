"""Template filters of the annotator tools."""

from __future__ import annotations

from django import template

register = template.Library()

LIMIT_LABELS = {
    "cpu_time": "CPU time",
    "wall_time": "wall-clock time",
    "memory": "memory",
    "processes": "process count",
    "disk": "disk space",
    "output": "output size",
}


@register.filter
def limit_label(limit: str) -> str:
    """``cpu_time`` -> "CPU time"."""
    return LIMIT_LABELS.get(limit, limit)


@register.filter
def http_url(url: str) -> str:
    """The URL if it is http(s), else "" (never render javascript: or data: links from a corpus)."""
    url = (url or "").strip()
    return url if url.lower().startswith(("http://", "https://")) else ""


@register.filter
def side_of(verdict: str, order_shown: str) -> str:
    """A canonical verdict (A/B) in the terms of an annotator who saw ``order_shown``."""
    if verdict in ("A", "B") and order_shown in ("AB", "BA"):
        return "Response 1 (left)" if order_shown[0] == verdict else "Response 2 (right)"
    return {"tie": "a tie", "unsure": "unsure"}.get(verdict, "no verdict")
