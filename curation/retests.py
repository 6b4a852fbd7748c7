"""Retests: verified pairs drawn at the project's rate and offered, double-blind, to an annotator
who never held them; their labels compared with the verified one.

Writes: :func:`retest_draw` (called when pairs become verified: :mod:`curation.gate`,
:mod:`curation.disputes`), :func:`retest_offer`, :func:`retest_record` (the ``retest_record`` task
after a retest label is submitted). Reads: :func:`retest_by_annotator`, :func:`retest_summary`
(dashboard, annotator figures).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotation.models import Annotation, Assignment, Project, Role
from annotation.services import ServiceError, assignment_offer_retest
from curation.models import RetestResult, VerifiedPair

logger = logging.getLogger(__name__)

DRAW_CHUNK = 1000
Rng = random.Random


# --- writes --------------------------------------------------------------------------------------


def retest_draw(*, project: Project, batch_key: str | None = None, rate: float, rng: Rng | None = None) -> int:
    """Draw every not-yet-drawn verified pair (of a batch, or the project) for a retest with
    probability ``rate``, and offer the drawn ones. Returns the number of offers made.

    A pair is drawn once in its life: its ``retest_status`` leaves ``""`` for good.
    """
    rng = rng or random.Random()
    undrawn = VerifiedPair.objects.filter(project=project, retest_status=VerifiedPair.RetestStatus.UNDRAWN)
    if batch_key is not None:
        undrawn = undrawn.filter(batch_key=batch_key)
    offers = 0
    last_id = 0
    while True:
        ids = list(undrawn.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:DRAW_CHUNK])
        if not ids:
            return offers
        last_id = ids[-1]
        chosen = [i for i in ids if rng.random() < rate]
        skipped = sorted(set(ids) - set(chosen))
        VerifiedPair.objects.filter(pk__in=skipped, retest_status=VerifiedPair.RetestStatus.UNDRAWN).update(
            retest_status=VerifiedPair.RetestStatus.NOT_SELECTED
        )
        for verified_id in chosen:
            offers += int(retest_offer(verified_id=verified_id, rng=rng) is not None)


def retest_offer(*, verified_id: int, rng: Rng | None = None) -> Assignment | None:
    """Offer a verified pair, double-blind, to a random project annotator who never held it.

    It reaches them through their queue like any other pair (``annotation.services.
    assignment_offer_retest``). Claimed by compare-and-set on ``retest_status`` so a pair is
    offered at most once. None when it was drawn already or nobody is eligible.
    """
    rng = rng or random.Random()
    now = timezone.now()
    with transaction.atomic():
        claimed = VerifiedPair.objects.filter(pk=verified_id, retest_status=VerifiedPair.RetestStatus.UNDRAWN).update(
            retest_status=VerifiedPair.RetestStatus.OFFERED, retest_offered_at=now
        )
        if not claimed:
            return None
        verified = VerifiedPair.objects.select_related("pair", "pair__project").get(pk=verified_id)
        pair = verified.pair
        held = Assignment.objects.filter(pair=pair).values("annotator_id")
        candidates = list(
            pair.project.members.filter(groups__name=Role.ANNOTATOR.value)
            .exclude(pk__in=held)
            .distinct()
            .order_by("pk")
        )
        assignment = None
        while candidates and assignment is None:
            annotator = candidates.pop(rng.randrange(len(candidates)))
            try:
                assignment = assignment_offer_retest(pair=pair, annotator=annotator, rng=rng)
            except ServiceError as exc:  # took the pair meanwhile: try someone else
                logger.info("retest of pair %s not offered to %s: %s", pair.pk, annotator, exc)
        if assignment is None:
            logger.info("retest of pair %s: no eligible annotator", pair.pk)
            VerifiedPair.objects.filter(pk=verified_id).update(
                retest_status=VerifiedPair.RetestStatus.NO_ANNOTATOR, retest_offered_at=None
            )
            return None
        VerifiedPair.objects.filter(pk=verified_id).update(retest_offered_to=assignment.annotator)
    return assignment


def retest_record(*, annotation_id: int) -> RetestResult | None:
    """Compare a submitted retest label with the pair's verified label (idempotent).

    "Can't decide" counts as not agreeing. None when the annotation is not a retest or the pair
    is no longer verified (a lead discarded it meanwhile).
    """
    # A known-answer check label is extra too (is_retest), but it is not a retest.
    annotation = (
        Annotation.objects.filter(pk=annotation_id, is_retest=True, assignment__kind=Assignment.Kind.RETEST)
        .select_related("pair")
        .first()
    )
    if annotation is None:
        logger.info("annotation %s is not a retest label", annotation_id)
        return None
    verified = VerifiedPair.objects.filter(pair_id=annotation.pair_id).first()
    if verified is None:
        logger.info("retest label %s: pair %s is no longer verified", annotation_id, annotation.pair_id)
        return None
    side, _, strength = annotation.preference.partition("_")
    agrees = side == verified.side
    result, _ = RetestResult.objects.get_or_create(
        annotation=annotation,
        defaults={
            "project_id": annotation.pair.project_id,
            "pair_id": annotation.pair_id,
            "annotator_id": annotation.annotator_id,
            "retest_preference": annotation.preference,
            "verified_side": verified.side,
            "verified_strength": verified.strength,
            "agrees": agrees,
            "agrees_strength": agrees and strength.lower() == verified.strength,
        },
    )
    return result


# --- reads ---------------------------------------------------------------------------------------


def _retest_figures(n: int, agree: int, agree_strength: int) -> dict[str, Any]:
    return {"n": n, "agree": agree, "agree_strength": agree_strength, "rate": (agree / n) if n else None}


def retest_by_annotator(project: Project) -> dict[int, dict[str, Any]]:
    """Retest agreement with the verified label, per retest annotator (one aggregate query)."""
    rows = (
        RetestResult.objects.filter(project=project)
        .values("annotator_id")
        .annotate(
            n=Count("id"), agree=Count("id", filter=Q(agrees=True)), strict=Count("id", filter=Q(agrees_strength=True))
        )
        .order_by()
    )
    return {r["annotator_id"]: _retest_figures(r["n"], r["agree"], r["strict"]) for r in rows}


def retest_summary(project: Project) -> dict[str, Any]:
    """Project-wide retest figures: results, agreement, and offers still outstanding."""
    counts = RetestResult.objects.filter(project=project).aggregate(
        n=Count("id"), agree=Count("id", filter=Q(agrees=True)), strict=Count("id", filter=Q(agrees_strength=True))
    )
    offers = VerifiedPair.objects.filter(project=project).aggregate(
        offered=Count("id", filter=Q(retest_status=VerifiedPair.RetestStatus.OFFERED)),
        no_annotator=Count("id", filter=Q(retest_status=VerifiedPair.RetestStatus.NO_ANNOTATOR)),
    )
    figures = _retest_figures(counts["n"], counts["agree"], counts["strict"])
    figures.update(
        offered=offers["offered"], pending=max(0, offers["offered"] - counts["n"]), no_annotator=offers["no_annotator"]
    )
    return figures
