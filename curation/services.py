"""Every write of the curation app: agreement snapshots, the batch gate, D_gold, disputes, retests.

The flow (see ``curation/receivers.py`` and ``curation/tasks.py``):

1. A label arrives -> :func:`agreement_request` for its batch (debounced recomputation).
2. A pair gets all its labels -> :func:`pair_completed_handle`: the project's dispute rule either
   opens a :class:`Dispute` (lead review) or leaves the pair waiting for its batch's gate.
3. :func:`batch_refresh` recomputes the batch's alpha per dimension (a new snapshot), decides the
   gate (``ok`` / ``flagged`` / ``pending``, or ``accepted`` by a lead) and, when the gate is open,
   verifies every waiting pair (:class:`VerifiedPair`, D_gold) and draws retests.
4. :func:`project_refresh` recomputes the project-wide and per-annotator figures.
5. A lead resolves a dispute (:func:`dispute_resolve`) or accepts a flagged batch
   (:func:`batch_gate_accept`); a retest label is compared with the verified one (:func:`retest_record`).

Design choices:
- A lead's resolution still waits for the batch gate (DESIGN: "a majority (or a lead's
  resolution), and its batch's preference alpha is at least the threshold"). A lead who trusts a
  low-alpha batch accepts it explicitly, with a note (:func:`batch_gate_accept`); that opens the
  gate for its majority and lead-resolved pairs alike.
- Verification is not revoked when a batch's alpha later falls: the gate stops verifying, the
  batch is flagged on the dashboard, and the pairs verified earlier stay (a lead can still open
  them). ``gate_min_units`` keeps a batch's first few pairs from deciding the gate on a noisy alpha.
- Only a lead's "discard" removes a pair from D_gold.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotation.models import Annotation, Assignment, Pair, Project, Role
from annotation.preference import parse
from annotation.roles import is_lead
from annotation.services import ServiceError, assignment_offer_retest
from curation.models import (
    AgreementSnapshot,
    BatchGate,
    CurationSettings,
    Dispute,
    DisputeResolution,
    PairScore,
    RetestResult,
    VerifiedPair,
)
from curation.rules import DisputeRule, PairVerdict, pair_verdict
from curation.selectors import (
    agreement_figures,
    agreement_from_columns,
    annotator_figures,
    batch_key_for,
    batch_pairs,
    label_columns,
    pairs_pending_gate,
    parse_batch_key,
)

logger = logging.getLogger(__name__)

GATE_CHUNK = 1000
Rng = random.Random


def _debounce_s() -> float:
    return float(getattr(settings, "CURATION_AGREEMENT_DEBOUNCE_S", 5.0))


# --- settings ------------------------------------------------------------------------------------


def curation_settings_get_or_create(*, project: Project) -> CurationSettings:
    """The project's curation settings, created with the defaults on first use."""
    row, _ = CurationSettings.objects.get_or_create(project=project)
    return row


SETTINGS_FIELDS = {
    "alpha_threshold",
    "gate_min_units",
    "retest_rate",
    "dispute_on_undecidable",
    "split_rule",
    "dispute_on_high_controversiality",
    "auto_discard_undecidable",
}


def curation_settings_update(*, project: Project, updated_by: Any = None, **fields: Any) -> CurationSettings:
    """Change a project's thresholds or dispute rule, then re-apply the gate to every batch.

    New rules apply to pairs not yet settled; existing disputes and verifications stay.
    """
    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise ValidationError(f"unknown curation settings: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        curation_settings_get_or_create(project=project)
        row = CurationSettings.objects.select_for_update().get(project=project)
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_by = updated_by
        row.full_clean()
        row.save()
    # After the settings lock is released: _request locks gate, then settings (one order everywhere).
    for key in BatchGate.objects.filter(project=project).values_list("batch_key", flat=True):
        agreement_request(project_id=project.pk, batch_key=key)
    return row


def _rule(row: CurationSettings) -> DisputeRule:
    return DisputeRule(
        on_undecidable=row.dispute_on_undecidable,
        split=row.split_rule,
        on_high_controversiality=row.dispute_on_high_controversiality,
        auto_discard_undecidable=row.auto_discard_undecidable,
    )


# --- requests (debounce) -------------------------------------------------------------------------


def _gate_get_or_create(project_id: int, batch_key: str) -> BatchGate:
    _kind, import_id = parse_batch_key(batch_key)
    gate, _ = BatchGate.objects.get_or_create(
        project_id=project_id, batch_key=batch_key, defaults={"import_batch_id": import_id}
    )
    return gate


def _request(project_id: int, batch_key: str) -> None:
    """Bump the request counters of a batch and its project; enqueue a refresh after commit when
    none is outstanding.

    Debounce protocol (the same for the project's counters on CurationSettings):
    - a request bumps ``requested_seq`` under the row lock, and enqueues a refresh (with the
      debounce countdown) only if no earlier request is still unanswered;
    - a refresh reads ``requested_seq`` *before* reading labels, computes, records it as
      ``computed_seq``, and re-enqueues itself if a request arrived meanwhile
      (:func:`_enqueue_if_behind`).
    So labels arriving within a window cost one computation, a label committed before a request
    is always seen by the computation that answers it, and no request is left unanswered (a lost
    message is re-sent by :func:`agreement_sweep`).
    """
    gate = _gate_get_or_create(project_id, batch_key)
    settings_row, _ = CurationSettings.objects.get_or_create(project_id=project_id)
    # Lock both rows: the outstanding-request check and the bump must not interleave with a
    # refresh recording its computation, or a request could be neither answered nor re-enqueued.
    gate = BatchGate.objects.select_for_update().get(pk=gate.pk)
    batch_idle = gate.requested_seq <= gate.computed_seq
    BatchGate.objects.filter(pk=gate.pk).update(requested_seq=F("requested_seq") + 1)
    settings_row = CurationSettings.objects.select_for_update().get(pk=settings_row.pk)
    project_idle = settings_row.agreement_requested_seq <= settings_row.agreement_computed_seq
    CurationSettings.objects.filter(pk=settings_row.pk).update(agreement_requested_seq=F("agreement_requested_seq") + 1)
    if batch_idle:
        transaction.on_commit(lambda: _enqueue_batch_refresh(project_id, batch_key), robust=True)
    if project_idle:
        transaction.on_commit(lambda: _enqueue_project_refresh(project_id), robust=True)


def _enqueue_batch_refresh(project_id: int, batch_key: str) -> None:
    from curation.tasks import batch_refresh_task

    batch_refresh_task.apply_async(kwargs={"project_id": project_id, "batch_key": batch_key}, countdown=_debounce_s())


def _enqueue_project_refresh(project_id: int) -> None:
    from curation.tasks import project_refresh_task

    project_refresh_task.apply_async(kwargs={"project_id": project_id}, countdown=_debounce_s())


def _enqueue_if_behind(*, project_id: int, batch_key: str | None = None) -> None:
    """After a refresh: if a request arrived while it computed, schedule the next one."""
    if batch_key is not None:
        if BatchGate.objects.filter(
            project_id=project_id, batch_key=batch_key, requested_seq__gt=F("computed_seq")
        ).exists():
            transaction.on_commit(lambda: _enqueue_batch_refresh(project_id, batch_key), robust=True)
    elif CurationSettings.objects.filter(
        project_id=project_id, agreement_requested_seq__gt=F("agreement_computed_seq")
    ).exists():
        transaction.on_commit(lambda: _enqueue_project_refresh(project_id), robust=True)


def agreement_request(*, project_id: int, batch_key: str) -> None:
    """Ask for a (debounced) recomputation of a batch's and its project's agreement."""
    with transaction.atomic():
        _request(project_id, batch_key)


def agreement_request_for_pair(*, pair_id: int) -> None:
    """A label arrived on ``pair_id``: recompute its batch and project (debounced)."""
    row = Pair.objects.filter(pk=pair_id).values("project_id", "batch_id").first()
    if row is None:
        logger.info("pair %s is gone; no agreement to recompute", pair_id)
        return
    agreement_request(project_id=row["project_id"], batch_key=batch_key_for(row["batch_id"]))


# --- pair completion: the dispute rule -----------------------------------------------------------


def _dispute_open(*, pair_id: int, project_id: int, batch_key: str, verdict: PairVerdict) -> Dispute | None:
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
        [p for p, _ in labels], [c for _, c in labels], _rule(curation_settings_get_or_create(project=pair.project))
    )
    if verdict.reason is None:
        return "pending"
    dispute = _dispute_open(
        pair_id=pair.pk, project_id=pair.project_id, batch_key=batch_key_for(pair.batch_id), verdict=verdict
    )
    if dispute is None:
        return "settled"
    return "discarded" if verdict.discard else "disputed"


def pair_completed_handle(*, pair_id: int) -> str:
    """A pair got all its labels: apply the dispute rule and ask for its batch's gate to be re-run."""
    row = Pair.objects.filter(pk=pair_id).values("project_id", "batch_id").first()
    if row is None:
        logger.info("pair %s is gone; nothing to curate", pair_id)
        return "missing"
    outcome = pair_evaluate(pair_id=pair_id)
    agreement_request(project_id=row["project_id"], batch_key=batch_key_for(row["batch_id"]))
    return outcome


# --- agreement and the gate ----------------------------------------------------------------------


def _gate_status(gate: BatchGate, row: CurationSettings, alpha: float | None, n_pairs: int, n_complete: int) -> str:
    if alpha is None or (n_complete < row.gate_min_units and n_complete < n_pairs):
        decided = BatchGate.Status.PENDING
    elif alpha >= row.alpha_threshold:
        decided = BatchGate.Status.OK
    else:
        decided = BatchGate.Status.FLAGGED
    if gate.accepted_at is not None and decided != BatchGate.Status.OK:
        return BatchGate.Status.ACCEPTED  # a lead's acceptance keeps the gate open
    return decided


def batch_refresh(*, project_id: int, batch_key: str, force: bool = False, rng: Rng | None = None) -> BatchGate | None:
    """Recompute a batch's agreement, store a snapshot, decide its gate and apply it.

    Debounced: returns None without computing when no request is newer than the last
    computation (``force`` computes anyway). Returns the updated gate.
    """
    gate = BatchGate.objects.filter(project_id=project_id, batch_key=batch_key).first()
    if gate is None:
        if not force:
            logger.info("no gate for %s in project %s; nothing requested", batch_key, project_id)
            return None
        gate = _gate_get_or_create(project_id, batch_key)
    read_at = timezone.now()  # every label committed before this is seen below (curation/sweep.py relies on it)
    target = gate.requested_seq  # read before the labels: every label committed before it is seen below
    if not force and gate.computed_seq >= target:
        return None
    project = Project.objects.get(pk=project_id)
    row = curation_settings_get_or_create(project=project)
    figures = agreement_figures(project, batch_key)
    counts = batch_pairs(project, batch_key).aggregate(
        n=Count("id"), complete=Count("id", filter=Q(status=Pair.Status.COMPLETE))
    )
    now = timezone.now()
    with transaction.atomic():
        # Lock the gate row: a lead accepting this batch right now must not be overwritten by us.
        gate = BatchGate.objects.select_for_update().get(pk=gate.pk)
        gate.alpha = figures.preference
        gate.threshold = row.alpha_threshold
        gate.figures = figures.figures
        gate.n_units, gate.n_labels = figures.n_units, figures.n_labels
        gate.n_pairs, gate.n_complete = counts["n"], counts["complete"]
        gate.status = _gate_status(gate, row, figures.preference, counts["n"], counts["complete"])
        gate.computed_at = now
        gate.labels_read_at = max(gate.labels_read_at or read_at, read_at)
        gate.computed_seq = max(gate.computed_seq, target)
        gate.save()
        scope = AgreementSnapshot.Scope.BATCH if batch_key.startswith("import:") else AgreementSnapshot.Scope.ROUND
        AgreementSnapshot.objects.create(
            project=project,
            scope=scope,
            scope_key=batch_key,
            figures=figures.figures,
            n_units=figures.n_units,
            n_labels=figures.n_labels,
            computed_at=now,
        )
    if gate.status == BatchGate.Status.FLAGGED:
        logger.warning(
            "batch %s of project %s flagged: preference alpha %.3f < %.2f",
            batch_key,
            project_id,
            gate.alpha,
            gate.threshold,
        )
    batch_gate_apply(gate=gate, settings_row=row, rng=rng)
    _enqueue_if_behind(project_id=project_id, batch_key=batch_key)
    return gate


def project_refresh(*, project_id: int, force: bool = False) -> AgreementSnapshot | None:
    """Recompute the project-wide figures and every annotator's agreement (new snapshots).

    Debounced like :func:`batch_refresh`. Returns the project snapshot, or None when skipped.
    """
    row = CurationSettings.objects.filter(project_id=project_id).select_related("project").first()
    if row is None:
        if not force:
            return None
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            return None
        row = curation_settings_get_or_create(project=project)
    target = row.agreement_requested_seq
    if not force and row.agreement_computed_seq >= target:
        return None
    project = row.project
    columns = label_columns(project)
    figures = agreement_from_columns(columns, list(project.desired_attributes))
    per_annotator = annotator_figures(project, columns)
    now = timezone.now()
    with transaction.atomic():
        snapshot = AgreementSnapshot.objects.create(
            project=project,
            scope=AgreementSnapshot.Scope.PROJECT,
            scope_key="",
            figures=figures.figures,
            n_units=figures.n_units,
            n_labels=figures.n_labels,
            computed_at=now,
        )
        AgreementSnapshot.objects.bulk_create(
            AgreementSnapshot(
                project=project,
                scope=AgreementSnapshot.Scope.ANNOTATOR,
                scope_key=str(annotator_id),
                figures=stats,
                n_units=stats["n_labels"],
                n_labels=stats["n_labels"],
                computed_at=now,
            )
            for annotator_id, stats in per_annotator.items()
        )
        # Lock as _request does, so a request either sees this computation or is re-enqueued below.
        CurationSettings.objects.select_for_update().filter(pk=row.pk).first()
        CurationSettings.objects.filter(pk=row.pk, agreement_computed_seq__lt=target).update(
            agreement_computed_seq=target
        )
    _enqueue_if_behind(project_id=project_id)
    return snapshot


@dataclass
class GateResult:
    disputes_opened: int = 0
    verified: int = 0
    retests_offered: int = 0


def _label_groups(pair_ids: list[int]) -> Iterable[tuple[int, list[tuple[str, str]]]]:
    rows = (
        Annotation.objects.filter(pair_id__in=pair_ids, is_retest=False)
        .order_by("pair_id")
        .values_list("pair_id", "preference", "controversiality")
    )
    for pair_id, group in groupby(rows.iterator(chunk_size=GATE_CHUNK * 4), key=lambda r: r[0]):
        yield pair_id, [(p, c) for _, p, c in group]


def batch_gate_apply(
    *, gate: BatchGate, settings_row: CurationSettings | None = None, rng: Rng | None = None
) -> GateResult:
    """Settle the complete pairs of a batch that are still waiting.

    Every waiting pair goes through the dispute rule (a dispute opens whatever the gate says).
    When the gate is open, the clean ones become VerifiedPairs (``via=majority``), lead-resolved
    disputes become VerifiedPairs (``via=lead``), and the newly verified pairs are drawn for retest.
    Idempotent: unique constraints make concurrent runs insert each row once.
    """
    project = Project.objects.get(pk=gate.project_id)
    row = settings_row or curation_settings_get_or_create(project=project)
    rule = _rule(row)
    result = GateResult()
    last_id = 0
    while True:
        ids = list(
            pairs_pending_gate(project, gate.batch_key).filter(pk__gt=last_id).values_list("pk", flat=True)[:GATE_CHUNK]
        )
        if not ids:
            break
        last_id = ids[-1]
        now = timezone.now()
        clean: list[VerifiedPair] = []
        for pair_id, labels in _label_groups(ids):
            verdict = pair_verdict([p for p, _ in labels], [c for _, c in labels], rule)
            if verdict.reason is not None:
                if _dispute_open(pair_id=pair_id, project_id=project.pk, batch_key=gate.batch_key, verdict=verdict):
                    result.disputes_opened += 1
            elif gate.is_open and verdict.side is not None and verdict.strength is not None:
                clean.append(
                    VerifiedPair(
                        pair_id=pair_id,
                        project=project,
                        batch_key=gate.batch_key,
                        side=verdict.side,
                        strength=verdict.strength,
                        via=VerifiedPair.Via.MAJORITY,
                        votes=verdict.votes,
                        verified_at=now,
                    )
                )
        if clean:
            # A pair verified by a concurrent run conflicts on the one-to-one and is skipped.
            VerifiedPair.objects.bulk_create(clean, ignore_conflicts=True)
            result.verified += len(clean)
    if gate.is_open:
        resolved = Dispute.objects.filter(
            project=project, batch_key=gate.batch_key, status=Dispute.Status.RESOLVED, pair__verification__isnull=True
        ).values_list("pk", flat=True)
        for dispute_id in list(resolved):
            with transaction.atomic():
                # Lock the dispute as dispute_resolve does, so we verify with its latest decision.
                dispute = (
                    Dispute.objects.select_for_update().filter(pk=dispute_id, status=Dispute.Status.RESOLVED).first()
                )
                latest = _latest_resolution(dispute) if dispute else None
                if dispute is None or latest is None or latest.is_discard:
                    continue
                _, created = _verify_from_resolution(dispute, latest, timezone.now())
                result.verified += int(created)
        result.retests_offered = retest_draw(project=project, batch_key=gate.batch_key, rate=row.retest_rate, rng=rng)
    return result


def batch_gate_accept(*, gate_id: int, lead: Any, note: str, rng: Rng | None = None) -> BatchGate:
    """A lead lets a flagged batch through despite its low alpha (with a note); its waiting pairs
    are verified at once. The acceptance (who, when, why) stays on the gate."""
    if not is_lead(lead):
        raise ServiceError("only leads and admins can accept a batch")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "say why this batch can be trusted despite its alpha"})
    with transaction.atomic():
        # Lock the gate: a refresh finishing at the same time must see (and keep) the acceptance.
        gate = BatchGate.objects.select_for_update().get(pk=gate_id)
        if gate.status != BatchGate.Status.FLAGGED:
            raise ServiceError("only a batch flagged below the threshold can be accepted")
        gate.status = BatchGate.Status.ACCEPTED
        gate.accepted_by = lead
        gate.accepted_at = timezone.now()
        gate.accept_note = note
        gate.save(update_fields=["status", "accepted_by", "accepted_at", "accept_note"])
    batch_gate_apply(gate=gate, rng=rng)
    return gate


# --- disputes ------------------------------------------------------------------------------------


def _latest_resolution(dispute: Dispute) -> DisputeResolution | None:
    return DisputeResolution.objects.filter(dispute=dispute).order_by("-created_at", "-id").first()


def _verify_from_resolution(
    dispute: Dispute, resolution: DisputeResolution, now: datetime
) -> tuple[VerifiedPair, bool]:
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
                verified, created = _verify_from_resolution(dispute, resolution, now)
            else:
                waiting = True
        dispute.closed_at = now
        dispute.save(update_fields=["status", "closed_at"])
    if created and verified is not None:
        row = curation_settings_get_or_create(project=dispute.project)
        retest_draw(project=dispute.project, batch_key=dispute.batch_key, rate=row.retest_rate, rng=rng)
        verified.refresh_from_db()
    return ResolveResult(resolution=resolution, verified=verified, waiting_for_gate=waiting)


# --- retests -------------------------------------------------------------------------------------


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
        ids = list(undrawn.filter(pk__gt=last_id).order_by("pk").values_list("pk", flat=True)[:GATE_CHUNK])
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
    annotation = Annotation.objects.filter(pk=annotation_id, is_retest=True).select_related("pair").first()
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


# --- reward-model scores (filled by curation rounds) --------------------------------------------


def pair_scores_store(*, model_version_id: int, scores: Iterable[tuple[int, float, float]]) -> int:
    """Store ``(pair_id, r_a, r_b)`` scores of one model version (replacing earlier ones).

    ``p`` is computed against each pair's verified label (null for unverified pairs).
    Returns the number of rows written.
    """
    from curation.sampling import preference_probability

    written = 0
    batch: list[tuple[int, float, float]] = []

    def flush(rows: list[tuple[int, float, float]]) -> int:
        sides = dict(VerifiedPair.objects.filter(pair_id__in=[r[0] for r in rows]).values_list("pair_id", "side"))
        objects = []
        for pair_id, r_a, r_b in rows:
            side = sides.get(pair_id)
            p = None
            if side is not None:
                chosen, rejected = (r_a, r_b) if side == "A" else (r_b, r_a)
                p = float(preference_probability(chosen, rejected))
            objects.append(PairScore(pair_id=pair_id, model_version_id=model_version_id, r_a=r_a, r_b=r_b, p=p))
        PairScore.objects.bulk_create(
            objects, update_conflicts=True, unique_fields=["pair", "model_version"], update_fields=["r_a", "r_b", "p"]
        )
        return len(objects)

    with transaction.atomic():
        for item in scores:
            batch.append((int(item[0]), float(item[1]), float(item[2])))
            if len(batch) >= GATE_CHUNK:
                written += flush(batch)
                batch = []
        if batch:
            written += flush(batch)
    return written


# --- catch-up ------------------------------------------------------------------------------------


def agreement_sweep() -> int:
    """Catch up on curation work whose messages were lost (a broker outage, a killed worker).

    1. Every complete pair whose verdict was never computed (no dispute, no verification, and no
       gate computation saw its last label; :func:`curation.sweep.pairs_missing_verdict`) goes
       through the dispute rule now, and its batch's gate is requested again.
    2. Refreshes whose request is newer than their computation are sent again.

    Works from the rows alone, so it finds the work whatever messages were lost. Sending never
    raises: with the broker still down the requests stay recorded for the next sweep. Returns how
    many pairs and scopes it acted on.
    """
    from curation.sweep import pairs_missing_verdict
    from curation.tasks import batch_refresh_task, project_refresh_task

    count = 0
    scopes: set[tuple[int, str]] = set()
    for pair_id, project_id, batch_key in pairs_missing_verdict():
        pair_evaluate(pair_id=pair_id)
        scopes.add((project_id, batch_key))
        count += 1
    for project_id, batch_key in sorted(scopes):
        agreement_request(project_id=project_id, batch_key=batch_key)

    def send(task: Any, **kwargs: Any) -> int:
        try:
            task.delay(**kwargs)
        except Exception as exc:  # the request stays recorded; the next sweep sends it again
            logger.warning("agreement sweep could not queue %s %s: %s", task.name, kwargs, exc)
            return 0
        return 1

    for project_id, batch_key in BatchGate.objects.filter(requested_seq__gt=F("computed_seq")).values_list(
        "project_id", "batch_key"
    ):
        count += send(batch_refresh_task, project_id=project_id, batch_key=batch_key)
    for project_id in CurationSettings.objects.filter(
        agreement_requested_seq__gt=F("agreement_computed_seq")
    ).values_list("project_id", flat=True):
        count += send(project_refresh_task, project_id=project_id)
    return count


def project_refresh_all(*, project: Project, rng: Rng | None = None) -> None:
    """Recompute every batch (applying the gate) and the project now, in this process."""
    from curation.selectors import batch_keys

    for key in batch_keys(project):
        _gate_get_or_create(project.pk, key)
        batch_refresh(project_id=project.pk, batch_key=key, force=True, rng=rng)
    project_refresh(project_id=project.pk, force=True)
