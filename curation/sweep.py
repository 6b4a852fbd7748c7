"""Selectors of the catch-up sweep: complete pairs whose verdict was never computed.

A label's curation work is triggered by messages (``curation/receivers.py``); with the broker down
those are lost while the label itself is saved. The sweep (:func:`curation.agreement_refresh.agreement_sweep`,
run by beat) must therefore find the work from the rows alone, never from a record of messages:

- a pair is *settled* once it has a Dispute or a VerifiedPair;
- a complete, unsettled pair is *waiting for its batch's gate*, and the gate has seen it only if
  its last computation began reading labels (``BatchGate.labels_read_at``) after the pair's last
  label was committed. :data:`COMMIT_MARGIN_S` covers the moment between a label's
  ``submitted_at`` and its commit.

Every other complete, unsettled pair never had its verdict computed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Subquery

from annotation.models import Annotation, Pair
from curation.batches import batch_key_for
from curation.models import BatchGate, Dispute, VerifiedPair

COMMIT_MARGIN_S = 60


def pairs_missing_verdict(*, limit: int = 10000) -> list[tuple[int, int, str]]:
    """``(pair_id, project_id, batch_key)`` of complete pairs with no dispute, no verification,
    and no gate computation that saw their last label (at most ``limit``, oldest first)."""
    last_label = (
        Annotation.objects.filter(pair=OuterRef("pk"), is_retest=False).order_by("-submitted_at").values("submitted_at")
    )
    rows = (
        Pair.objects.filter(status=Pair.Status.COMPLETE)
        .filter(~Exists(Dispute.objects.filter(pair=OuterRef("pk"))))
        .filter(~Exists(VerifiedPair.objects.filter(pair=OuterRef("pk"))))
        .annotate(last_label_at=Subquery(last_label[:1]))
        .order_by("pk")
        .values_list("pk", "project_id", "batch_id", "last_label_at")
    )
    read_at: dict[tuple[int, str], datetime | None] = {}
    missing: list[tuple[int, int, str]] = []
    margin = timedelta(seconds=COMMIT_MARGIN_S)
    for pair_id, project_id, batch_id, last_label_at in rows.iterator(chunk_size=2000):
        key = batch_key_for(batch_id)
        if (project_id, key) not in read_at:
            read_at[(project_id, key)] = (
                BatchGate.objects.filter(project_id=project_id, batch_key=key)
                .values_list("labels_read_at", flat=True)
                .first()
            )
        seen_from = read_at[(project_id, key)]
        if seen_from is None or last_label_at is None or last_label_at > seen_from - margin:
            missing.append((pair_id, project_id, key))
            if len(missing) >= limit:
                break
    return missing
