"""Disputes: the dispute rule applied to a complete pair, the lead's decision, its history, and the
batch gate for lead-resolved pairs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from annotation.services import ServiceError
from curation.agreement_refresh import pair_completed_handle
from curation.disputes import dispute_resolve
from curation.gate import batch_gate_accept
from curation.models import BatchGate, Dispute, DisputeResolution, VerifiedPair
from tests.curation.helpers import (
    A_CLEARLY,
    A_SLIGHTLY,
    B_CLEARLY,
    B_SLIGHTLY,
    FAILING,
    UNDECIDABLE,
    WITH_MISSING,
    label_matrix,
    make_batch,
    settle,
)

# A passing batch (alpha 0.9495) whose third pair has a "can't decide" label: a dispute.
WITH_DISPUTE = WITH_MISSING


def disputed_batch(project: Any, trio: list[Any], rows: list[list[str]]) -> tuple[BatchGate, Dispute]:
    _, pairs = make_batch(project, len(rows))
    label_matrix(project, trio, list(zip(pairs, rows, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None
    return gate, Dispute.objects.get()


def test_a_dispute_in_a_passing_batch_holds_back_only_its_pair(project: Any, trio: list[Any]) -> None:
    gate, dispute = disputed_batch(project, trio, WITH_DISPUTE)
    assert gate.status == BatchGate.Status.OK
    assert (dispute.reason, dispute.status, dispute.votes) == (
        "undecidable",
        "open",
        {"A": 0, "B": 2, "undecidable": 1},
    )
    assert VerifiedPair.objects.count() == 2
    assert not VerifiedPair.objects.filter(pair=dispute.pair).exists()


def test_no_majority_opens_a_dispute(project: Any, trio: list[Any]) -> None:
    _, dispute = disputed_batch(project, trio, [[A_CLEARLY, B_CLEARLY, UNDECIDABLE]])
    assert (dispute.reason, dispute.votes) == ("no_majority", {"A": 1, "B": 1, "undecidable": 1})


def test_lead_resolution_in_an_open_batch_verifies_the_pair(
    project: Any, users: dict[str, Any], trio: list[Any]
) -> None:
    _, dispute = disputed_batch(project, trio, WITH_DISPUTE)

    result = dispute_resolve(
        dispute_id=dispute.pk, lead=users["lena"], decision="B_SLIGHTLY", note="B cites the source."
    )

    assert not result.waiting_for_gate
    verified = VerifiedPair.objects.get(pair=dispute.pair)
    assert (verified.preference, verified.via, verified.verified_by) == ("B_SLIGHTLY", "lead", users["lena"])
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.RESOLVED and dispute.closed_at is not None
    resolution = DisputeResolution.objects.get()
    assert (resolution.lead, resolution.decision, resolution.note) == (
        users["lena"],
        "B_SLIGHTLY",
        "B cites the source.",
    )


def test_lead_resolution_waits_for_the_gate_of_a_flagged_batch(
    project: Any, users: dict[str, Any], trio: list[Any]
) -> None:
    gate, dispute = disputed_batch(project, trio, FAILING)
    assert gate.status == BatchGate.Status.FLAGGED and dispute.reason == "strength_split"

    result = dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision=A_CLEARLY, note="A is right.")

    assert result.waiting_for_gate and result.verified is None
    assert not VerifiedPair.objects.exists()
    batch_gate_accept(gate_id=gate.pk, lead=users["adam"], note="Checked every pair.")
    verified = {v.pair_id: (v.preference, v.via) for v in VerifiedPair.objects.all()}
    assert verified[dispute.pair_id] == ("A_CLEARLY", "lead")
    assert len(verified) == 3


def test_every_decision_is_kept_and_the_latest_counts(project: Any, users: dict[str, Any], trio: list[Any]) -> None:
    _, dispute = disputed_batch(project, trio, WITH_DISPUTE)

    dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision=A_SLIGHTLY, note="first look")
    dispute_resolve(dispute_id=dispute.pk, lead=users["adam"], decision=B_CLEARLY, note="second look: A has a bug")
    assert VerifiedPair.objects.get(pair=dispute.pair).preference == "B_CLEARLY"

    dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision="DISCARD", note="both are wrong")
    dispute.refresh_from_db()
    assert dispute.status == Dispute.Status.DISCARDED
    assert not VerifiedPair.objects.filter(pair=dispute.pair).exists()
    history = list(DisputeResolution.objects.filter(dispute=dispute).values_list("lead__username", "decision", "note"))
    assert history == [
        ("lena", "A_SLIGHTLY", "first look"),
        ("adam", "B_CLEARLY", "second look: A has a bug"),
        ("lena", "DISCARD", "both are wrong"),
    ]


def test_resolution_is_validated(project: Any, users: dict[str, Any], trio: list[Any]) -> None:
    _, dispute = disputed_batch(project, trio, WITH_DISPUTE)
    with pytest.raises(ValidationError) as excinfo:
        dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision="C_CLEARLY", note=" ")
    assert set(excinfo.value.error_dict) == {"decision", "note"}
    with pytest.raises(ValidationError):
        dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision=UNDECIDABLE, note="cannot tell")
    with pytest.raises(ServiceError):
        dispute_resolve(dispute_id=dispute.pk, lead=users["alice"], decision=A_CLEARLY, note="annotators cannot")
    with pytest.raises(ServiceError):
        dispute_resolve(dispute_id=999_999, lead=users["lena"], decision=A_CLEARLY, note="no such dispute")
    assert not DisputeResolution.objects.exists()


def test_resolved_pair_is_verified_when_its_batch_later_passes(
    project: Any, users: dict[str, Any], trio: list[Any]
) -> None:
    from curation.agreement_refresh import agreement_request, batch_refresh
    from curation.project_settings import curation_settings_update

    gate, dispute = disputed_batch(project, trio, FAILING)
    dispute_resolve(dispute_id=dispute.pk, lead=users["lena"], decision=B_SLIGHTLY, note="majority is right")
    assert not VerifiedPair.objects.exists()

    curation_settings_update(project=project, alpha_threshold=0.7)  # 0.740 now passes
    agreement_request(project_id=project.pk, batch_key=gate.batch_key)
    gate = batch_refresh(project_id=project.pk, batch_key=gate.batch_key)
    assert gate is not None and gate.status == BatchGate.Status.OK
    assert VerifiedPair.objects.get(pair=dispute.pair).via == "lead"
    assert VerifiedPair.objects.count() == 3


@pytest.mark.postgres
def test_concurrent_resolutions_are_serialised(
    require_postgres: None, transactional_db: Any, no_broker: Any, project: Any, users: dict[str, Any], trio: list[Any]
) -> None:
    _, dispute = disputed_batch(project, trio, WITH_DISPUTE)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def resolve(lead: Any, decision: str) -> None:
        try:
            barrier.wait(timeout=10)
            dispute_resolve(dispute_id=dispute.pk, lead=lead, decision=decision, note=f"{lead} says {decision}")
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=resolve, args=(users["lena"], A_CLEARLY)),
        threading.Thread(target=resolve, args=(users["adam"], B_CLEARLY)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    resolutions = list(DisputeResolution.objects.filter(dispute=dispute).order_by("created_at", "id"))
    assert len(resolutions) == 2
    # the verification reflects whichever decision was recorded last
    assert VerifiedPair.objects.get(pair=dispute.pair).preference == resolutions[-1].decision


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
