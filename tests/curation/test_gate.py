"""Stored agreement figures and the batch gate, end to end through the annotation services.

The alpha values are computed by hand in the comments (Krippendorff 2011's coincidence matrix
o_ck = sum_u pairs(c, k in u) / (m_u - 1), ordinal metric d(c,k) = (sum_{g=c..k} n_g - (n_c+n_k)/2)^2)
and cross-checked with ``krippendorff.alpha`` on the reliability matrix.
"""

from __future__ import annotations

import random
from typing import Any
from unittest import mock

import krippendorff
import numpy as np
import pytest

from annotation.models import Pair
from curation.models import AgreementSnapshot, BatchGate, CurationSettings, Dispute, DisputeResolution, VerifiedPair
from curation.rules import DisputeRule, pair_verdict
from curation.selectors import agreement_figures
from curation.services import (
    agreement_request,
    batch_gate_accept,
    batch_refresh,
    curation_settings_get_or_create,
    curation_settings_update,
    pair_completed_handle,
    project_refresh,
)
from tests.curation.helpers import (
    A_CLEARLY,
    A_SLIGHTLY,
    B_CLEARLY,
    B_SLIGHTLY,
    LEVELS,
    UNDECIDABLE,
    label_matrix,
    make_batch,
)

# Preference codes 0..3 = A clearly, A slightly, B slightly, B clearly.
PASSING = [  # alpha = 889/1017 = 0.874 (>= 0.85)
    [A_CLEARLY, A_CLEARLY, A_SLIGHTLY],
    [B_CLEARLY, B_CLEARLY, B_CLEARLY],
    [A_SLIGHTLY, B_SLIGHTLY, B_SLIGHTLY],
]
FAILING = [  # alpha = 739/999 = 0.740 (< 0.85); pair 3 is a "clearly vs slightly" split
    [A_CLEARLY, A_CLEARLY, A_SLIGHTLY],
    [B_CLEARLY, B_CLEARLY, B_CLEARLY],
    [A_CLEARLY, B_SLIGHTLY, B_SLIGHTLY],
]
WITH_MISSING = [  # alpha = 592.5/624 = 0.9495; "can't decide" is a missing value
    [A_CLEARLY, A_CLEARLY, A_SLIGHTLY],
    [B_CLEARLY, B_CLEARLY, B_CLEARLY],
    [B_SLIGHTLY, B_SLIGHTLY, UNDECIDABLE],
]


def package_alpha(rows: list[list[str]], level: str = "ordinal", domain: list[str] = LEVELS) -> float:
    """krippendorff.alpha on the coders x units reliability matrix (NaN = missing)."""
    matrix = np.array(
        [[domain.index(row[j]) if row[j] in domain else np.nan for row in rows] for j in range(len(rows[0]))],
        dtype=float,
    )
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def settle(project: Any, pairs: list[Pair]) -> BatchGate | None:
    """What the workers do after the last label: every pair's completion, then the batch refresh."""
    for pair in pairs:
        pair_completed_handle(pair_id=pair.pk)
    return batch_refresh(project_id=project.pk, batch_key=f"import:{pairs[0].batch_id}")


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


def test_project_refresh_stores_project_and_per_annotator_figures(project: Any, trio: list[Any]) -> None:
    _, first = make_batch(project, 3, "one.jsonl")
    _, second = make_batch(project, 3, "two.jsonl")
    label_matrix(project, trio, list(zip(first + second, PASSING + FAILING, strict=True)))
    settle(project, first)
    settle(project, second)

    snapshot = project_refresh(project_id=project.pk)

    assert snapshot is not None
    assert snapshot.figures["preference"] == pytest.approx(package_alpha(PASSING + FAILING), abs=1e-12)
    assert (snapshot.n_units, snapshot.n_labels) == (6, 18)
    per_annotator = {
        int(s.scope_key): s.figures for s in AgreementSnapshot.objects.filter(project=project, scope="annotator")
    }
    assert set(per_annotator) == {u.pk for u in trio}
    # Sides (alice, bob, carol): A,A,A / B,B,B / A,B,B in both batches. Each label is compared with
    # the two others on its pair: alice agrees on 2+2+0 per batch -> 8/12; bob and carol 2+2+1 -> 10/12.
    assert per_annotator[trio[2].pk]["agreement_rate"] == pytest.approx(10 / 12)
    assert per_annotator[trio[0].pk]["agreement_rate"] == pytest.approx(8 / 12)
    assert per_annotator[trio[0].pk]["n_labels"] == 6
    assert per_annotator[trio[0].pk]["retest"] == {"n": 0, "agree": 0, "agree_strength": 0, "rate": None}


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


def test_refresh_is_debounced_by_request_counters(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None
    key = gate.batch_key
    snapshots = AgreementSnapshot.objects.filter(scope="batch", scope_key=key)
    assert snapshots.count() == 1

    assert batch_refresh(project_id=project.pk, batch_key=key) is None  # nothing new was requested
    assert snapshots.count() == 1
    agreement_request(project_id=project.pk, batch_key=key)
    agreement_request(project_id=project.pk, batch_key=key)
    assert batch_refresh(project_id=project.pk, batch_key=key) is not None  # one computation answers both
    assert batch_refresh(project_id=project.pk, batch_key=key) is None
    assert snapshots.count() == 2
    assert project_refresh(project_id=project.pk) is not None
    assert project_refresh(project_id=project.pk) is None


def test_all_undecidable_pair_is_discarded_by_the_rule(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 1)
    label_matrix(project, trio, [(pairs[0], [UNDECIDABLE] * 3)])

    assert pair_completed_handle(pair_id=pairs[0].pk) == "discarded"
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.reason) == (Dispute.Status.DISCARDED, "undecidable")
    resolution = DisputeResolution.objects.get()
    assert resolution.lead is None and resolution.is_discard
    assert pair_completed_handle(pair_id=pairs[0].pk) == "settled"  # idempotent


def test_incomplete_pair_is_left_alone(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 1)
    label_matrix(project, trio[:2], [(pairs[0], [A_CLEARLY, B_CLEARLY])])
    assert pair_completed_handle(pair_id=pairs[0].pk) == "incomplete"
    assert pair_completed_handle(pair_id=999_999) == "missing"
    assert not Dispute.objects.exists()


def test_settings_are_created_lazily_with_defaults(project: Any, settings: Any) -> None:
    settings.CURATION_RETEST_RATE = 0.05  # the shipped default (the curation conftest zeroes it)
    assert not CurationSettings.objects.filter(project=project).exists()
    row = curation_settings_get_or_create(project=project)
    assert (row.alpha_threshold, row.retest_rate, row.split_rule, row.dispute_on_undecidable) == (
        0.85,
        0.05,
        "strength",
        True,
    )


def test_settings_update_validates(project: Any) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        curation_settings_update(project=project, retest_rate=1.5)
    with pytest.raises(ValidationError):
        curation_settings_update(project=project, colour="red")
    row = curation_settings_update(project=project, alpha_threshold=0.7, split_rule="any")
    assert (row.alpha_threshold, row.split_rule) == (0.7, "any")


@pytest.mark.parametrize(
    ("labels", "rule", "reason", "side"),
    [
        ([A_CLEARLY, A_CLEARLY, A_SLIGHTLY], DisputeRule(), None, "A"),
        ([A_CLEARLY, B_CLEARLY, UNDECIDABLE], DisputeRule(), "no_majority", None),
        ([A_SLIGHTLY, A_SLIGHTLY, B_CLEARLY], DisputeRule(), "strength_split", "A"),
        ([A_CLEARLY, A_CLEARLY, B_CLEARLY], DisputeRule(), None, "A"),  # majority not "only slightly"
        ([A_CLEARLY, A_SLIGHTLY, B_CLEARLY], DisputeRule(), "strength_split", "A"),  # 1-1 strength tie: slightly
        ([A_SLIGHTLY, A_SLIGHTLY, B_CLEARLY], DisputeRule(split="none"), None, "A"),
        ([A_CLEARLY, A_CLEARLY, B_SLIGHTLY], DisputeRule(split="any"), "dissent", "A"),
        ([A_CLEARLY, A_CLEARLY, UNDECIDABLE], DisputeRule(), "undecidable", "A"),
        ([A_CLEARLY, A_CLEARLY, UNDECIDABLE], DisputeRule(on_undecidable=False), None, "A"),
        ([A_CLEARLY, UNDECIDABLE, UNDECIDABLE], DisputeRule(on_undecidable=False), "no_majority", None),
    ],
)
def test_dispute_rule(labels: list[str], rule: DisputeRule, reason: str | None, side: str | None) -> None:
    verdict = pair_verdict(labels, ["low"] * len(labels), rule)
    assert (verdict.reason, verdict.side) == (reason, side)


def test_high_controversiality_rule() -> None:
    rule = DisputeRule(on_high_controversiality=True)
    assert pair_verdict([A_CLEARLY] * 3, ["high", "high", "low"], rule).reason == "high_controversiality"
    assert pair_verdict([A_CLEARLY] * 3, ["high", "low", "low"], rule).reason is None
    assert pair_verdict([A_CLEARLY] * 3, ["high"] * 3, DisputeRule()).reason is None


def test_completion_and_labels_enqueue_tasks_after_commit(
    project: Any, trio: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from curation import tasks

    _, pairs = make_batch(project, 1)
    with (
        mock.patch.object(tasks.pair_completed_task, "delay") as completed,
        mock.patch.object(tasks.agreement_request_task, "delay") as requested,
        mock.patch.object(tasks.retest_record_task, "delay") as retest,
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            label_matrix(project, [trio[0]], [(pairs[0], [A_CLEARLY])])
        assert callbacks and not requested.called  # nothing is enqueued before the commit
        for annotator in trio[1:]:
            with django_capture_on_commit_callbacks(execute=True):
                label_matrix(project, [annotator], [(pairs[0], [A_CLEARLY])])
    assert requested.call_args_list == [mock.call(pair_id=pairs[0].pk)] * 2
    completed.assert_called_once_with(pair_id=pairs[0].pk)
    assert not retest.called


def test_signals_enqueue_tasks_and_survive_a_broker_outage(
    project: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from annotation.models import Annotation
    from annotation.signals import annotation_submitted, pair_completed
    from curation import tasks

    with (
        mock.patch.object(tasks.pair_completed_task, "delay") as delay,
        mock.patch.object(tasks.retest_record_task, "delay", side_effect=OSError("broker down")) as retest,
        django_capture_on_commit_callbacks(execute=True),
    ):
        pair_completed.send(sender=Pair, pair_id=42, project_id=project.pk)
        # a failing enqueue is logged, not raised into the annotator's request
        annotation_submitted.send(sender=Annotation, annotation_id=7, pair_id=42, project_id=project.pk, is_retest=True)
    delay.assert_called_once_with(pair_id=42)
    retest.assert_called_once_with(annotation_id=7)


def test_agreement_request_enqueues_debounced_refreshes(
    project: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from curation import tasks

    settings.CURATION_AGREEMENT_DEBOUNCE_S = 3
    with (
        mock.patch.object(tasks.batch_refresh_task, "apply_async") as batch_task,
        mock.patch.object(tasks.project_refresh_task, "apply_async") as project_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        agreement_request(project_id=project.pk, batch_key="import:none")
    batch_task.assert_called_once_with(kwargs={"project_id": project.pk, "batch_key": "import:none"}, countdown=3.0)
    project_task.assert_called_once_with(kwargs={"project_id": project.pk}, countdown=3.0)
    gate = BatchGate.objects.get(project=project, batch_key="import:none")
    assert (gate.requested_seq, gate.computed_seq) == (1, 0)


def test_tasks_call_their_services(project: Any, trio: list[Any]) -> None:
    from curation.tasks import batch_refresh_task, pair_completed_task, project_refresh_task

    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    for pair in pairs:
        pair_completed_task(pair_id=pair.pk)
    batch_refresh_task(project_id=project.pk, batch_key=f"import:{pairs[0].batch_id}")
    project_refresh_task(project_id=project.pk)
    assert VerifiedPair.objects.count() == 3
    assert AgreementSnapshot.objects.filter(scope="project").count() == 1
    pair_completed_task(pair_id=123456)  # a missing pair ends quietly


def test_seeded_rng_is_accepted(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    for pair in pairs:
        pair_completed_handle(pair_id=pair.pk)
    gate = batch_refresh(project_id=project.pk, batch_key=f"import:{pairs[0].batch_id}", rng=random.Random(1))
    assert gate is not None and VerifiedPair.objects.count() == 3


def test_agreement_figures_selector_counts_regular_labels_only(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    figures = agreement_figures(project)
    assert (figures.n_units, figures.n_labels) == (3, 9)
    assert figures.preference == pytest.approx(889 / 1017)


def test_one_refresh_is_enqueued_per_window_and_a_late_request_is_not_lost(
    project: Any, trio: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from curation import selectors, services, tasks

    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    key = f"import:{pairs[0].batch_id}"
    real = selectors.agreement_figures

    def labels_arrive_meanwhile(*args: Any, **kwargs: Any) -> Any:
        figures = real(*args, **kwargs)
        agreement_request(project_id=project.pk, batch_key=key)  # outstanding: enqueues nothing itself
        return figures

    with (
        mock.patch.object(tasks.batch_refresh_task, "apply_async") as batch_task,
        mock.patch.object(tasks.project_refresh_task, "apply_async") as project_task,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(3):
                agreement_request(project_id=project.pk, batch_key=key)
        assert (batch_task.call_count, project_task.call_count) == (1, 1)  # the burst shares one refresh each

        with (
            django_capture_on_commit_callbacks(execute=True),
            mock.patch.object(services, "agreement_figures", labels_arrive_meanwhile),
        ):
            assert batch_refresh(project_id=project.pk, batch_key=key) is not None
        assert batch_task.call_count == 2  # the refresh saw the late request and scheduled the next one

        with django_capture_on_commit_callbacks(execute=True):
            assert batch_refresh(project_id=project.pk, batch_key=key) is not None
            assert batch_refresh(project_id=project.pk, batch_key=key) is None
        assert batch_task.call_count == 2

        real_columns = selectors.label_columns

        def label_arrives_meanwhile(*args: Any, **kwargs: Any) -> Any:
            columns = real_columns(*args, **kwargs)
            agreement_request(project_id=project.pk, batch_key=key)
            return columns

        with (
            django_capture_on_commit_callbacks(execute=True),
            mock.patch.object(services, "label_columns", label_arrives_meanwhile),
        ):
            assert project_refresh(project_id=project.pk) is not None
        assert project_task.call_count == 2  # the same for the project's figures
        with django_capture_on_commit_callbacks(execute=True):
            assert project_refresh(project_id=project.pk) is not None
            assert project_refresh(project_id=project.pk) is None
        assert project_task.call_count == 2


def test_sweep_re_enqueues_unanswered_requests(project: Any) -> None:
    from curation import tasks
    from curation.services import agreement_sweep

    agreement_request(project_id=project.pk, batch_key="import:none")  # its enqueue "was lost" (never committed)
    with (
        mock.patch.object(tasks.batch_refresh_task, "delay") as batch_task,
        mock.patch.object(tasks.project_refresh_task, "delay") as project_task,
    ):
        assert agreement_sweep() == 2
    batch_task.assert_called_once_with(project_id=project.pk, batch_key="import:none")
    project_task.assert_called_once_with(project_id=project.pk)
    batch_refresh(project_id=project.pk, batch_key="import:none")
    project_refresh(project_id=project.pk)
    assert agreement_sweep() == 0
