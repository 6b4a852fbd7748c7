"""Template filters of the annotator tools."""

from __future__ import annotations

from typing import Any

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


@register.filter
def enforcement_rows(limits: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A stored run's ``limits["enforced"]`` as rows to show: label, enforced, how (or why not)."""
    from annotation.tools.sandbox import ENFORCEMENT_LABELS

    enforced = (limits or {}).get("enforced") or {}
    if not isinstance(enforced, dict):
        return []
    rows = []
    for key, entry in enforced.items():
        if isinstance(entry, dict):
            label = ENFORCEMENT_LABELS.get(key, key.replace("_", " "))
            rows.append(
                {"key": key, "label": label, "enforced": bool(entry.get("enforced")), "how": entry.get("how", "")}
            )
    return rows


@register.filter
def not_in_force(rows: list[dict[str, Any]]) -> str:
    """The labels of the rows whose limit was not in force, joined for a summary line."""
    return "; ".join(row["label"] for row in rows if not row["enforced"])
