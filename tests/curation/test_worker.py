"""End to end through a real Celery worker: labels in, agreement, gate and D_gold out."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F

from curation.models import AgreementSnapshot, BatchGate, CurationSettings, Dispute, VerifiedPair
from tests.conftest import wait_for
from tests.curation.helpers import WITH_MISSING, label_matrix, make_batch

pytestmark = [pytest.mark.worker]


# celery_worker comes last so that it is torn down (its last tasks drained) while the database is still open.
def test_worker_computes_agreement_and_verifies_the_batch(project: Any, trio: list[Any], celery_worker: Any) -> None:
    batch, pairs = make_batch(project, 3)

    # Three annotators label through the annotation services; every submit commits and signals.
    label_matrix(project, trio, list(zip(pairs, WITH_MISSING, strict=True)))

    verified = wait_for(lambda: VerifiedPair.objects.count() == 2 and list(VerifiedPair.objects.order_by("pair_id")))
    assert [v.pair_id for v in verified] == [pairs[0].pk, pairs[1].pk]
    assert [v.preference for v in verified] == ["A_CLEARLY", "B_CLEARLY"]
    gate = BatchGate.objects.get(project=project, batch_key=f"import:{batch.pk}")
    assert gate.status == BatchGate.Status.OK
    assert gate.alpha == pytest.approx(592.5 / 624, abs=1e-12)
    assert Dispute.objects.get().pair_id == pairs[2].pk

    def project_snapshot() -> AgreementSnapshot | None:
        snap = AgreementSnapshot.objects.filter(project=project, scope="project").first()
        return snap if snap is not None and snap.n_labels == 9 else None

    snapshot = wait_for(project_snapshot)
    assert snapshot.figures["preference"] == pytest.approx(592.5 / 624, abs=1e-12)
    assert (
        AgreementSnapshot.objects.filter(project=project, scope="annotator", computed_at=snapshot.computed_at).count()
        == 3
    )

    # let the last debounced requests be answered before the worker stops
    wait_for(lambda: not BatchGate.objects.filter(requested_seq__gt=F("computed_seq")).exists())
    wait_for(
        lambda: not CurationSettings.objects.filter(agreement_requested_seq__gt=F("agreement_computed_seq")).exists()
    )
