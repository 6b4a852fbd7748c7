"""Disputes: pairs the project's dispute rule holds back for a lead, and the leads' decisions.

Writes: :func:`pair_evaluate` applies the dispute rule to a complete pair (a dispute opens, or the
pair waits for its batch's gate, :mod:`curation.gate`); :func:`dispute_resolve` records a lead's
decision (a final label verifies the pair ``via=lead`` once its batch's gate is open; a discard
removes it from D_gold). Reads: the dispute queue and everything a lead needs to decide
(:func:`dispute_review`). The review flow around it (next dispute, comment threads) is
:mod:`curation.review`.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Annotation, Pair, Project
from annotation.preference import parse
from annotation.roles import is_lead
from annotation.selectors import annotation_list_for_pair
from annotation.services import ServiceError
from curation.batches import batch_key_for
from curation.models import BatchGate, Dispute, DisputeResolution, VerifiedPair
from curation.project_settings import curation_settings_get_or_create, dispute_rule
from curation.retests import retest_draw
from curation.rules import PairVerdict, pair_verdict
from curation.scores import Prediction, pair_prediction

logger = logging.getLogger(__name__)

Rng = random.Random
DISPUTE_PAGE = 50


# --- writes --------------------------------------------------------------------------------------


def dispute_open(*, pair_id: int, project_id: int, batch_key: str, verdict: PairVerdict) -> Dispute | None:
    """Create the pair's dispute (None when it already has one). An all-undecidable pair the rule
    discards is closed at once with an automatic resolution, so the decision is on record."""
    assert verdict.reason is not None
    now = timezone.now()
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                pair_id=pair_id,
                project_id=project_id,
                batch_key=batch_key,
                reason=verdict.reason,
                votes=verdict.votes,
                status=Dispute.Status.DISCARDED if verdict.discard else Dispute.Status.OPEN,
                closed_at=now if verdict.discard else None,
            )
            if verdict.discard:
                DisputeResolution.objects.create(
                    dispute=dispute,
                    lead=None,
                    decision=DisputeResolution.Decision.DISCARD,
                    note="Every annotator marked the pair can't decide; discarded by the project's rule.",
                )
    except IntegrityError:  # a concurrent evaluation opened it first
        return None
    return dispute


def pair_evaluate(*, pair_id: int) -> str:
    """Apply the project's dispute rule to a complete pair. Idempotent.

    Returns ``"disputed"`` (a dispute was opened), ``"discarded"`` (opened and closed by the
    all-undecidable rule), ``"pending"`` (a clean majority, waiting for its batch's gate),
    ``"settled"`` (it already had a dispute or a verification), ``"incomplete"`` or ``"missing"``.
    """
    pair = Pair.objects.filter(pk=pair_id).select_related("project").first()
    if pair is None:
        return "missing"
    if pair.status != Pair.Status.COMPLETE:
        return "incomplete"
    if Dispute.objects.filter(pair=pair).exists() or VerifiedPair.objects.filter(pair=pair).exists():
        return "settled"
    labels = list(Annotation.objects.filter(pair=pair, is_retest=False).values_list("preference", "controversiality"))
    verdict = pair_verdict(
        [p for p, _ in labels],
        [c for _, c in labels],
        dispute_rule(curation_settings_get_or_create(project=pair.project)),
    )
    if verdict.reason is None:
        return "pending"
    dispute = dispute_open(
        pair_id=pair.pk, project_id=pair.project_id, batch_key=batch_key_for(pair.batch_id), verdict=verdict
    )
    if dispute is None:
        return "settled"
    return "discarded" if verdict.discard else "disputed"


def dispute_latest_resolution(dispute: Dispute) -> DisputeResolution | None:
    """The decision on ``dispute`` that counts (the latest), or None."""
    return DisputeResolution.objects.filter(dispute=dispute).order_by("-created_at", "-id").first()


def verify_from_resolution(dispute: Dispute, resolution: DisputeResolution, now: datetime) -> tuple[VerifiedPair, bool]:
    """Make the dispute's pair verified (``via=lead``) with ``resolution``'s label (never a discard)."""
    side, strength = parse(resolution.decision)  # never called for a discard
    return VerifiedPair.objects.update_or_create(
        pair_id=dispute.pair_id,
        defaults={
            "project_id": dispute.project_id,
            "batch_key": dispute.batch_key,
            "side": side,
            "strength": strength,
            "via": VerifiedPair.Via.LEAD,
            "pool": VerifiedPair.Pool.GOLD,
            "votes": dispute.votes,
            "verified_by": resolution.lead,
            "verified_at": now,
        },
    )


@dataclass
class ResolveResult:
    """What a lead's decision did: the resolution, the verification (if the gate is open), or a wait."""

    resolution: DisputeResolution
    verified: VerifiedPair | None
    waiting_for_gate: bool


def dispute_resolve(*, dispute_id: int, lead: Any, decision: str, note: str, rng: Rng | None = None) -> ResolveResult:
    """Record a lead's decision on a dispute: a final label, or discard.

    Any dispute may be decided again; every decision is kept and the latest counts. A final label
    makes the pair verified (``via=lead``) when its batch's gate is open, else it waits for the
    gate (``waiting_for_gate``). Discarding removes the pair from D_gold.
    """
    if not is_lead(lead):
        raise ServiceError("only leads and admins can resolve disputes")
    note = (note or "").strip()
    errors = {}
    if decision not in DisputeResolution.Decision.values:
        errors["decision"] = "choose a final label or discard"
    if not note:
        errors["note"] = "say briefly why"
    if errors:
        raise ValidationError(errors)
    verified: VerifiedPair | None = None
    created = False
    with transaction.atomic():
        # Lock the dispute row: two leads deciding at once are serialised, so the status, the
        # history and the VerifiedPair all end up reflecting the same (latest) decision.
        dispute = Dispute.objects.select_for_update().filter(pk=dispute_id).first()
        if dispute is None:
            raise ServiceError("no such dispute")
        resolution = DisputeResolution(dispute=dispute, lead=lead, decision=decision, note=note)
        resolution.full_clean(exclude=["dispute", "lead"])
        resolution.save()
        now = timezone.now()
        waiting = False
        if resolution.is_discard:
            dispute.status = Dispute.Status.DISCARDED
            VerifiedPair.objects.filter(pair_id=dispute.pair_id).delete()
        else:
            dispute.status = Dispute.Status.RESOLVED
            gate = BatchGate.objects.filter(project_id=dispute.project_id, batch_key=dispute.batch_key).first()
            if gate is not None and gate.is_open:
                verified, created = verify_from_resolution(dispute, resolution, now)
            else:
                waiting = True
        dispute.closed_at = now
        dispute.save(update_fields=["status", "closed_at"])
    if created and verified is not None:
        row = curation_settings_get_or_create(project=dispute.project)
        retest_draw(project=dispute.project, batch_key=dispute.batch_key, rate=row.retest_rate, rng=rng)
        verified.refresh_from_db()
    return ResolveResult(resolution=resolution, verified=verified, waiting_for_gate=waiting)


# --- reads ---------------------------------------------------------------------------------------


def dispute_list(
    project: Project, *, status: str = "", before: int | None = None, limit: int = DISPUTE_PAGE
) -> list[Dispute]:
    """Disputes of a project, newest first, keyset-paged by id (``before``: the last id seen)."""
    disputes = Dispute.objects.filter(project=project).select_related("pair")
    if status:
        disputes = disputes.filter(status=status)
    if before is not None:
        disputes = disputes.filter(pk__lt=before)
    return list(disputes.order_by("-id")[:limit])


def dispute_get(project: Project, dispute_id: int) -> Dispute | None:
    """A dispute of ``project`` (with its pair and batch), or None."""
    return Dispute.objects.filter(project=project, pk=dispute_id).select_related("pair", "pair__batch").first()


def dispute_resolutions(dispute: Dispute) -> QuerySet[DisputeResolution]:
    """Every decision on ``dispute``, oldest first."""
    return DisputeResolution.objects.filter(dispute=dispute).select_related("lead").order_by("created_at", "id")


def tool_evidence(pair: Pair) -> list[dict[str, Any]]:
    """The tool evidence leads may see on ``pair`` (``annotation.tools.selectors.evidence_for_pair``),
    as template-ready dicts: ``kind``, ``annotator``, ``created_at`` and the item's exported fields."""
    from annotation.tools.selectors import evidence_for_pair

    return [
        {
            "kind": item.kind,
            "annotator": item.annotator_name,
            "created_at": item.created_at,
            "fields": item.as_export_dict(),
        }
        for item in evidence_for_pair(pair)
    ]


@dataclass
class Review:
    dispute: Dispute
    pair: Pair
    labels: list[Annotation]
    retest_labels: list[Annotation]
    resolutions: list[DisputeResolution]
    gate: BatchGate | None
    verification: VerifiedPair | None
    prediction: Prediction | None
    evidence: list[dict[str, Any]]


def dispute_review(project: Project, dispute: Dispute) -> Review:
    """Everything a lead needs to decide a dispute."""
    pair = dispute.pair
    annotations = list(annotation_list_for_pair(pair))
    return Review(
        dispute=dispute,
        pair=pair,
        labels=[a for a in annotations if not a.is_retest],
        retest_labels=[a for a in annotations if a.is_retest],
        resolutions=list(dispute_resolutions(dispute)),
        gate=BatchGate.objects.filter(project=project, batch_key=dispute.batch_key).first(),
        verification=VerifiedPair.objects.filter(pair=pair).select_related("verified_by").first(),
        prediction=pair_prediction(project, pair),
        evidence=tool_evidence(pair),
    )
