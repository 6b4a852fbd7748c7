"""Progress figures of the labelling page: labelled this session, queue left, project completion.

They are shown beside every pair, so they must not cost SQL on every submit (the submit-and-next
path has a budget of 10 queries, see tests/annotation/test_label_queries.py). The expensive counts
(a project's pairs by status, the pairs still open to one annotator) are cached for
``LABEL_PROGRESS_TTL`` seconds in Django's cache; the per-session count is a cache counter bumped
by each submit. Between refreshes the annotator's "left in your queue" is the cached figure minus
what they labelled since it was computed, so it moves with every label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q

from annotation.models import Assignment, Pair, Project

SESSION_TTL = 24 * 3600


def _ttl() -> int:
    return int(getattr(settings, "LABEL_PROGRESS_TTL", 30))


@dataclass(frozen=True)
class LabelProgress:
    session_done: int
    remaining: int
    project_complete: int
    project_total: int

    @property
    def project_percent(self) -> float:
        return 100.0 * self.project_complete / self.project_total if self.project_total else 0.0


def _session_key(project_id: int, session_key: str | None) -> str:
    return f"synpref:label-session:{project_id}:{session_key or '-'}"


def label_session_count(*, project_id: int, session_key: str | None) -> int:
    """Labels submitted in this project during this log-in session (0 without a session)."""
    if not session_key:
        return 0
    return int(cache.get(_session_key(project_id, session_key), 0))


def label_session_count_incr(*, project_id: int, session_key: str | None) -> int:
    """Count one more submitted label for this log-in session; returns the new count."""
    if not session_key:
        return 0
    key = _session_key(project_id, session_key)
    try:
        return int(cache.incr(key))
    except ValueError:  # not there yet (or expired): start it
        cache.set(key, 1, SESSION_TTL)
        return 1


def _project_counts(project: Project) -> tuple[int, int]:
    key = f"synpref:project-progress:{project.pk}"
    cached = cache.get(key)
    if cached is None:
        counts = Pair.objects.filter(project=project).aggregate(
            total=Count("id"), complete=Count("id", filter=Q(status=Pair.Status.COMPLETE))
        )
        cached = (int(counts["complete"]), int(counts["total"]))
        cache.set(key, cached, _ttl())
    return cached


def _remaining_for(project: Project, annotator: Any) -> int:
    """Pairs that could still be given to ``annotator``: open pairs they never held, plus retests offered to them."""
    held = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator).exclude(status=Assignment.Status.EXPIRED)
    open_to_them = Pair.objects.filter(project=project, status=Pair.Status.OPEN).filter(~Exists(held)).count()
    offered = Assignment.objects.filter(project=project, annotator=annotator, status=Assignment.Status.OFFERED).count()
    return open_to_them + offered


def label_progress(*, project: Project, annotator: Any, session_key: str | None) -> LabelProgress:
    """The three figures for the labelling page, from the cache when fresh (see the module docstring)."""
    session_done = label_session_count(project_id=project.pk, session_key=session_key)
    # Per session, as the figure is corrected by this session's count until it is recomputed.
    key = f"synpref:queue-left:{project.pk}:{annotator.pk}:{session_key or '-'}"
    cached = cache.get(key)
    if cached is None:
        cached = (_remaining_for(project, annotator), session_done)
        cache.set(key, cached, _ttl())
    remaining, done_then = cached
    complete, total = _project_counts(project)
    return LabelProgress(
        session_done=session_done,
        remaining=max(0, remaining - (session_done - done_then)),
        project_complete=complete,
        project_total=total,
    )
