"""Double-blind retest: verified pairs drawn at the project's rate, re-labelled, compared."""

from __future__ import annotations

import random
from typing import Any
from unittest import mock

import pytest

from annotation.models import Assignment, Pair
from annotation.services import annotation_submit, assignment_claim_next
from curation.models import RetestResult, VerifiedPair
from curation.project_settings import curation_settings_update
from curation.retests import retest_by_annotator, retest_draw, retest_record, retest_summary
from tests.curation.helpers import B_SLIGHTLY, PASSING, label_input, label_matrix, make_batch, settle


@pytest.fixture
def verified_batch(project: Any, users: dict[str, Any], trio: list[Any]) -> list[Pair]:
    """Three verified pairs (A clearly, B clearly, B slightly); dave joins as a fourth annotator."""
    project.members.add(users["dave"])
    curation_settings_update(project=project, retest_rate=1.0)
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    settle(project, pairs)
    assert VerifiedPair.objects.count() == 3
    return pairs


def test_verified_pairs_are_offered_to_an_annotator_who_never_saw_them(
    verified_batch: list[Pair], users: dict[str, Any]
) -> None:
    offers = Assignment.objects.filter(kind=Assignment.Kind.RETEST)
    assert sorted(offers.values_list("pair_id", flat=True)) == sorted(p.pk for p in verified_batch)
    assert set(offers.values_list("annotator__username", "status")) == {("dave", "offered")}
    assert set(VerifiedPair.objects.values_list("retest_status", "retest_offered_to__username")) == {
        ("offered", "dave")
    }


def test_retest_reaches_the_annotator_like_any_other_pair_and_is_compared(
    project: Any, verified_batch: list[Pair], users: dict[str, Any]
) -> None:
    dave = users["dave"]
    answers = {
        verified_batch[0].pk: "A_SLIGHTLY",
        verified_batch[1].pk: "A_CLEARLY",
        verified_batch[2].pk: "B_SLIGHTLY",
    }
    for _ in range(3):
        assignment = assignment_claim_next(project=project, annotator=dave)
        assert assignment is not None and assignment.pair_id in answers
        annotation = annotation_submit(
            assignment_id=assignment.pk, annotator=dave, data=label_input(answers[assignment.pair_id])
        )
        assert annotation.is_retest
        result = retest_record(annotation_id=annotation.pk)
        assert result is not None
        assert retest_record(annotation_id=annotation.pk) == result  # idempotent
    assert assignment_claim_next(project=project, annotator=dave) is None

    results = {r.pair_id: (r.agrees, r.agrees_strength) for r in RetestResult.objects.all()}
    assert results == {
        verified_batch[0].pk: (True, False),  # A slightly vs verified A clearly
        verified_batch[1].pk: (False, False),  # A clearly vs verified B clearly
        verified_batch[2].pk: (True, True),  # B slightly both
    }
    for pair in verified_batch:
        pair.refresh_from_db()
        assert pair.n_submitted == 3  # a retest is not one of the pair's N labels
    assert retest_by_annotator(project) == {
        dave.pk: {"n": 3, "agree": 2, "agree_strength": 1, "rate": pytest.approx(2 / 3)}
    }
    summary = retest_summary(project)
    assert (summary["n"], summary["agree"], summary["offered"], summary["pending"]) == (3, 2, 3, 0)


def test_undecided_retest_counts_as_disagreement(
    project: Any, verified_batch: list[Pair], users: dict[str, Any]
) -> None:
    assignment = assignment_claim_next(project=project, annotator=users["dave"])
    assert assignment is not None
    annotation = annotation_submit(
        assignment_id=assignment.pk, annotator=users["dave"], data=label_input("UNDECIDABLE")
    )
    result = retest_record(annotation_id=annotation.pk)
    assert result is not None and not result.agrees and result.retest_preference == "UNDECIDABLE"


def test_regular_labels_are_not_retests(project: Any, verified_batch: list[Pair]) -> None:
    from annotation.models import Annotation

    regular = Annotation.objects.filter(is_retest=False).first()
    assert regular is not None
    assert retest_record(annotation_id=regular.pk) is None
    assert not RetestResult.objects.exists()


def test_nobody_eligible_is_recorded(project: Any, trio: list[Any]) -> None:
    curation_settings_update(project=project, retest_rate=1.0)
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    settle(project, pairs)
    assert set(VerifiedPair.objects.values_list("retest_status", flat=True)) == {"no_annotator"}
    assert not Assignment.objects.filter(kind=Assignment.Kind.RETEST).exists()
    assert retest_summary(project)["no_annotator"] == 3


def test_draw_follows_the_rate_with_an_injected_rng(project: Any, users: dict[str, Any], trio: list[Any]) -> None:
    project.members.add(users["dave"])
    curation_settings_update(project=project, retest_rate=0.0)
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    settle(project, pairs)
    assert set(VerifiedPair.objects.values_list("retest_status", flat=True)) == {"not_selected"}
    assert not Assignment.objects.filter(kind=Assignment.Kind.RETEST).exists()

    # a pair is drawn once in its life; an undrawn pair draws with rng.random() < rate
    VerifiedPair.objects.update(retest_status="")
    reference = random.Random(7)
    expected = [reference.random() < 0.5 for _ in range(3)]
    offers = retest_draw(project=project, rate=0.5, rng=random.Random(7))
    statuses = list(VerifiedPair.objects.order_by("pk").values_list("retest_status", flat=True))
    assert statuses == ["offered" if chosen else "not_selected" for chosen in expected]
    assert offers == sum(expected)
    assert retest_draw(project=project, rate=1.0) == 0


def test_retest_label_is_recorded_by_a_task(
    project: Any, verified_batch: list[Pair], users: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    from curation import tasks

    assignment = assignment_claim_next(project=project, annotator=users["dave"])
    assert assignment is not None
    with (
        mock.patch.object(tasks.retest_record_task, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        annotation = annotation_submit(
            assignment_id=assignment.pk, annotator=users["dave"], data=label_input(B_SLIGHTLY)
        )
    delay.assert_called_once_with(annotation_id=annotation.pk)
    tasks.retest_record_task(annotation_id=annotation.pk)
    assert RetestResult.objects.filter(annotation=annotation).exists()


def test_discarded_pair_has_no_retest_result(project: Any, verified_batch: list[Pair], users: dict[str, Any]) -> None:
    assignment = assignment_claim_next(project=project, annotator=users["dave"])
    assert assignment is not None
    VerifiedPair.objects.filter(pair_id=assignment.pair_id).delete()
    annotation = annotation_submit(assignment_id=assignment.pk, annotator=users["dave"], data=label_input(B_SLIGHTLY))
    assert retest_record(annotation_id=annotation.pk) is None
