"""The batch gate, end to end through the annotation services: a batch's stored alpha decides
whether its pairs become verified; a lead may accept a flagged batch.

The alpha values are computed by hand in the comments (Krippendorff 2011's coincidence matrix, see
``tests/curation/helpers.py``) and cross-checked with ``krippendorff.alpha`` (``package_alpha``).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from curation.agreement_refresh import agreement_request, batch_refresh, pair_completed_handle
from curation.gate import batch_gate_accept
from curation.models import AgreementSnapshot, BatchGate, Dispute, VerifiedPair
from curation.project_settings import curation_settings_get_or_create, curation_settings_update
from tests.curation.helpers import (
    A_CLEARLY,
    FAILING,
    PASSING,
    WITH_MISSING,
    label_matrix,
    make_batch,
    package_alpha,
    settle,
)


def test_passing_batch_stores_the_hand_computed_alpha_and_verifies_its_pairs(project: Any, trio: list[Any]) -> None:
    # Unit 1 (0,0,1): o00 = o01 = o10 = 1.  Unit 2 (3,3,3): o33 = 3.  Unit 3 (1,2,2): o22 = o12 = o21 = 1.
    # n_c = 2, 2, 2, 3 (n = 9).  d01 = d12 = 4, d02 = 16, d03 = 42.25, d13 = 20.25, d23 = 6.25.
    # observed sum o*d = 4 * 4 = 16; expected sum n_c n_k d = 2 * 508.5 = 1017.
    # alpha = 1 - (n - 1) * 16 / 1017 = 889 / 1017.
    batch, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))

    gate = settle(project, pairs)

    assert gate is not None
    assert gate.alpha == pytest.approx(889 / 1017, abs=1e-12)
    assert gate.alpha == pytest.approx(package_alpha(PASSING), abs=1e-12)
    assert (gate.status, gate.threshold, gate.n_pairs, gate.n_complete) == (BatchGate.Status.OK, 0.85, 3, 3)
    snapshot = AgreementSnapshot.objects.get(project=project, scope="batch", scope_key=f"import:{batch.pk}")
    assert snapshot.figures["preference"] == pytest.approx(889 / 1017, abs=1e-12)
    assert (snapshot.n_units, snapshot.n_labels) == (3, 9)
    # every label said "opinion", "advice", "low", ["helpfulness"]: one value only, alpha undefined
    assert snapshot.figures["objectivity"] is None and snapshot.figures["controversiality"] is None
    assert snapshot.figures["desired_attributes"]["helpfulness"] is None
    assert set(snapshot.figures["desired_attributes"]) == set(project.desired_attributes)

    verified = {v.pair_id: (v.preference, v.via, v.pool) for v in VerifiedPair.objects.all()}
    assert verified == {
        pairs[0].pk: ("A_CLEARLY", "majority", "gold"),
        pairs[1].pk: ("B_CLEARLY", "majority", "gold"),
        pairs[2].pk: ("B_SLIGHTLY", "majority", "gold"),
    }
    assert not Dispute.objects.exists()


def test_batch_below_threshold_is_flagged_and_nothing_is_verified(project: Any, trio: list[Any]) -> None:
    # Unit 3 is now (0,2,2): o22 = o02 = o20 = 1.  n_c = 3, 1, 2, 3 (n = 9).
    # d01 = 4, d02 = 12.25, d03 = 36, d12 = 2.25, d13 = 16, d23 = 6.25.
    # observed 2 * (4 + 12.25) = 32.5; expected 2 * 499.5 = 999; alpha = 1 - 8 * 32.5 / 999 = 739 / 999.
    batch, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, FAILING, strict=True)))

    gate = settle(project, pairs)

    assert gate is not None
    assert gate.alpha == pytest.approx(739 / 999, abs=1e-12)
    assert gate.alpha == pytest.approx(package_alpha(FAILING), abs=1e-12)
    assert gate.status == BatchGate.Status.FLAGGED and gate.is_below_threshold
    assert not VerifiedPair.objects.exists()
    dispute = Dispute.objects.get()
    assert (dispute.pair_id, dispute.reason, dispute.status) == (pairs[2].pk, "strength_split", "open")
    assert dispute.votes == {"A": 1, "B": 2, "undecidable": 0}


def test_cant_decide_is_missing_in_alpha_and_opens_a_dispute(project: Any, trio: list[Any]) -> None:
    # Unit 3 (2,2,missing) has m = 2: o22 += 2.  n_c = 2, 1, 2, 3 (n = 8).
    # d01 = 2.25, d02 = 9, d03 = 30.25, d12 = 2.25, d13 = 16, d23 = 6.25.
    # observed 2 * 2.25 = 4.5; expected 2 * 312 = 624; alpha = 1 - 7 * 4.5 / 624 = 592.5 / 624.
    batch, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, WITH_MISSING, strict=True)))

    gate = settle(project, pairs)

    assert gate is not None
    assert gate.alpha == pytest.approx(592.5 / 624, abs=1e-12)
    assert gate.alpha == pytest.approx(package_alpha(WITH_MISSING), abs=1e-12)
    assert (gate.n_units, gate.n_labels) == (3, 9)
    assert gate.status == BatchGate.Status.OK
    assert Dispute.objects.get().reason == "undecidable"
    assert set(VerifiedPair.objects.values_list("pair_id", flat=True)) == {pairs[0].pk, pairs[1].pk}


def test_nominal_dimensions_and_desired_attributes_match_hand_values(project: Any, trio: list[Any]) -> None:
    # Objectivity, nominal: u1 (f,f,f): o_ff = 3; u2 (o,o,f): o_oo = 1, o_of = o_fo = 1; u3 (e,e,e): o_ee = 3.
    # n_f = 4, n_o = 2, n_e = 3 (n = 9).  alpha = 1 - (n-1) * 2 / (81 - 16 - 4 - 9) = 1 - 16/52 = 36/52.
    # Accuracy (its own nominal chosen/not variable): u1 (1,1,0), u2 (0,0,0), u3 (1,1,1).
    batch, pairs = make_batch(project, 3)
    objectivity = [["factual"] * 3, ["opinion", "opinion", "factual"], ["open_ended"] * 3]
    accuracy = [[True, True, False], [False, False, False], [True, True, True]]
    rows = []
    for i, pair in enumerate(pairs):
        rows.append(
            (
                pair,
                [
                    {
                        "preference": A_CLEARLY,
                        "objectivity": objectivity[i][j],
                        "desired_attributes": ["accuracy"] if accuracy[i][j] else [],
                    }
                    for j in range(3)
                ],
            )
        )
    label_matrix(project, trio, rows)

    gate = settle(project, pairs)

    assert gate is not None
    assert gate.figures["objectivity"] == pytest.approx(36 / 52, abs=1e-12)
    assert gate.figures["objectivity"] == pytest.approx(
        package_alpha(objectivity, "nominal", ["factual", "opinion", "open_ended"]), abs=1e-12
    )
    expected_accuracy = package_alpha([[str(v) for v in row] for row in accuracy], "nominal", ["False", "True"])
    assert gate.figures["desired_attributes"]["accuracy"] == pytest.approx(expected_accuracy, abs=1e-12)
    assert gate.figures["preference"] is None  # all A clearly: one value, alpha undefined
    assert gate.status == BatchGate.Status.PENDING  # an undefined alpha never passes the gate
    assert not VerifiedPair.objects.exists()


def test_gate_waits_for_enough_complete_pairs(project: Any, trio: list[Any]) -> None:
    curation_settings_update(project=project, gate_min_units=3)
    batch, pairs = make_batch(project, 4)
    label_matrix(project, trio, list(zip(pairs[:2], PASSING[:2], strict=True)))

    gate = settle(project, pairs[:2])
    assert gate is not None
    assert gate.alpha >= 0.85 and gate.status == BatchGate.Status.PENDING  # passes, but 2 < 3 complete pairs
    assert not VerifiedPair.objects.exists()

    label_matrix(project, trio, [(pairs[2], PASSING[2])])
    gate = settle(project, pairs[:3])
    assert gate is not None and gate.status == BatchGate.Status.OK and gate.n_complete == 3
    assert VerifiedPair.objects.count() == 3


def test_small_batch_is_judged_once_complete(project: Any, trio: list[Any]) -> None:
    assert curation_settings_get_or_create(project=project).gate_min_units == 20
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None and gate.status == BatchGate.Status.OK


def test_lead_accepts_a_flagged_batch_and_its_pairs_are_verified(
    project: Any, users: dict[str, Any], trio: list[Any]
) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, FAILING, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None and gate.status == BatchGate.Status.FLAGGED

    accepted = batch_gate_accept(gate_id=gate.pk, lead=users["lena"], note="Hard batch; labels checked by hand.")

    assert (accepted.status, accepted.accepted_by, accepted.accept_note) == (
        BatchGate.Status.ACCEPTED,
        users["lena"],
        "Hard batch; labels checked by hand.",
    )
    assert set(VerifiedPair.objects.values_list("pair_id", flat=True)) == {pairs[0].pk, pairs[1].pk}
    # a later recomputation keeps the acceptance (alpha is still low)
    agreement_request(project_id=project.pk, batch_key=gate.batch_key)
    again = batch_refresh(project_id=project.pk, batch_key=gate.batch_key)
    assert again is not None and again.status == BatchGate.Status.ACCEPTED


def test_only_a_flagged_batch_can_be_accepted_and_a_note_is_required(
    project: Any, users: dict[str, Any], trio: list[Any]
) -> None:
    from django.core.exceptions import ValidationError

    from annotation.services import ServiceError

    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None
    with pytest.raises(ServiceError):
        batch_gate_accept(gate_id=gate.pk, lead=users["lena"], note="why not")
    with pytest.raises(ValidationError):
        batch_gate_accept(gate_id=gate.pk, lead=users["lena"], note="  ")
    with pytest.raises(ServiceError):
        batch_gate_accept(gate_id=gate.pk, lead=users["alice"], note="I am an annotator")


def test_seeded_rng_is_accepted(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    for pair in pairs:
        pair_completed_handle(pair_id=pair.pk)
    gate = batch_refresh(project_id=project.pk, batch_key=f"import:{pairs[0].batch_id}", rng=random.Random(1))
    assert gate is not None and VerifiedPair.objects.count() == 3
