"""The batch gate: a batch's pairs become verified (D_gold) only while its preference alpha is at
least the project's threshold, or a lead accepted the batch.

:func:`batch_gate_apply` settles a batch's waiting pairs (the dispute rule for each; when the gate
is open, clean majorities and lead-resolved disputes become :class:`VerifiedPair` rows and the new
ones are drawn for retest); :func:`batch_gate_accept` is a lead letting a flagged batch through,
with a note. The gate's status is decided by the batch refresh (:mod:`curation.agreement_refresh`,
:func:`gate_status`) from the figures it computes.

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

import random
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotation.models import Annotation, Pair, Project
from annotation.roles import is_lead
from annotation.services import ServiceError
from curation.batches import batch_pairs, parse_batch_key
from curation.disputes import dispute_latest_resolution, dispute_open, verify_from_resolution
from curation.models import BatchGate, CurationSettings, Dispute, VerifiedPair
from curation.project_settings import curation_settings_get_or_create, dispute_rule
from curation.retests import retest_draw
from curation.rules import pair_verdict

GATE_CHUNK = 1000
Rng = random.Random


# --- reads ---------------------------------------------------------------------------------------


def pairs_pending_gate(project: Project, batch_key: str) -> QuerySet[Pair]:
    """Complete pairs of a batch with neither a dispute nor a verification: waiting for the gate."""
    return (
        batch_pairs(project, batch_key)
        .filter(status=Pair.Status.COMPLETE)
        .filter(~Exists(Dispute.objects.filter(pair=OuterRef("pk"))))
        .filter(~Exists(VerifiedPair.objects.filter(pair=OuterRef("pk"))))
        .order_by("id")
    )


def gate_status(gate: BatchGate, row: CurationSettings, alpha: float | None, n_pairs: int, n_complete: int) -> str:
    """The gate's decision for a batch with preference ``alpha`` and ``n_complete`` of ``n_pairs`` complete."""
    if alpha is None or (n_complete < row.gate_min_units and n_complete < n_pairs):
        decided = BatchGate.Status.PENDING
    elif alpha >= row.alpha_threshold:
        decided = BatchGate.Status.OK
    else:
        decided = BatchGate.Status.FLAGGED
    if gate.accepted_at is not None and decided != BatchGate.Status.OK:
        return BatchGate.Status.ACCEPTED  # a lead's acceptance keeps the gate open
    return decided


# --- writes --------------------------------------------------------------------------------------


def gate_get_or_create(project_id: int, batch_key: str) -> BatchGate:
    """The gate row of a batch, created (pending) on first use."""
    _kind, import_id = parse_batch_key(batch_key)
    gate, _ = BatchGate.objects.get_or_create(
        project_id=project_id, batch_key=batch_key, defaults={"import_batch_id": import_id}
    )
    return gate


@dataclass
class GateResult:
    """What one application of the gate did to a batch."""

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
    rule = dispute_rule(row)
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
                if dispute_open(pair_id=pair_id, project_id=project.pk, batch_key=gate.batch_key, verdict=verdict):
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
                # Lock the dispute as disputes.dispute_resolve does, so we verify with its latest decision.
                dispute = (
                    Dispute.objects.select_for_update().filter(pk=dispute_id, status=Dispute.Status.RESOLVED).first()
                )
                latest = dispute_latest_resolution(dispute) if dispute else None
                if dispute is None or latest is None or latest.is_discard:
                    continue
                _, created = verify_from_resolution(dispute, latest, timezone.now())
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
