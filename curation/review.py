"""The review flow around a dispute: the next dispute to work on, and the dispute's comment thread.

Who may use a thread: a lead or admin who may see the pair's labels (the blindness rule,
``annotation.selectors.pair_labels_visible_to``), or an annotator who has submitted a label on
the pair. An annotator who has not submitted (or still holds the pair) cannot read it: a comment
must never sway a label still to be given.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from annotation.models import Annotation, Assignment, Project
from annotation.selectors import pair_labels_visible_to
from curation.models import Dispute, DisputeComment

COMMENT_MAX = 5000


def dispute_next_open(project: Project, user: Any, *, exclude_id: int | None = None) -> Dispute | None:
    """The oldest open dispute of ``project`` that ``user`` may review (not one they may still label)."""
    disputes = Dispute.objects.filter(project=project, status=Dispute.Status.OPEN).select_related("pair")
    if exclude_id is not None:
        disputes = disputes.exclude(pk=exclude_id)
    live = Assignment.objects.filter(
        pair=OuterRef("pair_id"),
        annotator=user,
        status__in=[Assignment.Status.CLAIMED, Assignment.Status.OFFERED],
    )
    # Cheap pre-filter in SQL, then the one blindness rule on the few candidates.
    for dispute in disputes.exclude(Exists(live)).order_by("pk")[:50]:
        if pair_labels_visible_to(user, dispute.pair):
            return dispute
    return None


def dispute_thread_allowed(user: Any, dispute: Dispute) -> bool:
    """Whether ``user`` may read and write ``dispute``'s thread (see the module docstring)."""
    if pair_labels_visible_to(user, dispute.pair):
        return True
    return Annotation.objects.filter(pair_id=dispute.pair_id, annotator=user).exists() and not (
        Assignment.objects.filter(
            pair_id=dispute.pair_id,
            annotator=user,
            status__in=[Assignment.Status.CLAIMED, Assignment.Status.OFFERED],
        ).exists()
    )


def dispute_comment_list(dispute: Dispute) -> QuerySet[DisputeComment]:
    """The thread, oldest first, with authors."""
    return DisputeComment.objects.filter(dispute=dispute).select_related("author").order_by("created_at", "id")


def dispute_comment_add(*, dispute_id: int, author: Any, body: str) -> DisputeComment:
    """Add a comment. Raises ValidationError on ``body`` (empty, too long) or when the author may not
    take part in the thread; callers check :func:`dispute_thread_allowed` to answer 403 first."""
    text = (body or "").strip()
    if not text:
        raise ValidationError({"body": "Write a comment first."})
    if len(text) > COMMENT_MAX:
        raise ValidationError({"body": f"A comment is at most {COMMENT_MAX} characters (this one has {len(text)})."})
    with transaction.atomic():
        dispute = Dispute.objects.select_related("pair").get(pk=dispute_id)
        if not dispute_thread_allowed(author, dispute):
            raise ValidationError("Only the lead and annotators who have submitted a label on this pair can comment.")
        comment = DisputeComment(dispute=dispute, author=author, body=text)
        comment.full_clean()
        comment.save()
    return comment


def dispute_list_for_annotator(project: Project, user: Any, limit: int = 100) -> list[Dispute]:
    """Disputes on pairs ``user`` has submitted a label on (and no longer holds), newest first."""
    labelled = Annotation.objects.filter(pair=OuterRef("pair_id"), annotator=user)
    live = Assignment.objects.filter(
        pair=OuterRef("pair_id"),
        annotator=user,
        status__in=[Assignment.Status.CLAIMED, Assignment.Status.OFFERED],
    )
    return list(
        Dispute.objects.filter(project=project)
        .filter(Exists(labelled))
        .exclude(Exists(live))
        .select_related("pair", "project")
        .order_by("-pk")[:limit]
    )
