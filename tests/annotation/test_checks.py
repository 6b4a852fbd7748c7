"""Known-answer checks: qualification gating, hidden attention checks, their scores, first visits."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from annotation import checks
from annotation.models import Annotation, Assignment, KnownAnswer, Pair
from annotation.services import (
    AnnotationInput,
    ServiceError,
    annotation_submit,
    assignment_claim_next,
    assignment_release,
)


def label(side: str | None, project: Any) -> AnnotationInput:
    code = {"A": "A_CLEARLY", "B": "B_SLIGHTLY", None: "UNDECIDABLE"}[side]
    return AnnotationInput(
        preference=code,
        task_category=project.taxonomy[0],
        objectivity="factual",
        controversiality="low",
        desired_attributes=[],
        guideline="",
        rationale="because",
        time_spent_ms=1000,
    )


def claim(project: Any, user: Any, rng: random.Random | None = None) -> Assignment:
    assignment = assignment_claim_next(project=project, annotator=user, rng=rng)
    assert assignment is not None, "nothing was served"
    return assignment


def first_pair(project: Any, **filters: Any) -> Pair:
    pair = Pair.objects.filter(project=project, **filters).order_by("id").first()
    assert pair is not None
    return pair


def other(side: str) -> str:
    return "B" if side == "A" else "A"


@pytest.fixture
def qualified_project(loaded_project: Any, users: dict[str, Any]) -> Any:
    """Pairs 1-3 (in id order) are qualification pairs with answers A, B, A; 80% needed."""
    pairs = list(Pair.objects.filter(project=loaded_project).order_by("id"))
    for pair, side in zip(pairs[:3], "ABA", strict=True):
        checks.known_answer_set(
            project=loaded_project, pair_id=pair.pk, purpose="qualification", side=side, created_by=users["lena"]
        )
    return checks.check_settings_update(
        project=loaded_project, qualification_required=True, qualification_threshold=0.8, attention_check_rate=0.0
    )


def answer_qualification(project: Any, user: Any, *, right: int) -> list[Assignment]:
    """Answer every qualification pair served, the first ``right`` of them correctly."""
    served: list[Assignment] = []
    while True:
        try:
            assignment = assignment_claim_next(project=project, annotator=user)
        except ServiceError:  # failed: nothing more is served
            return served
        if assignment is None or assignment.kind != Assignment.Kind.QUALIFICATION:
            return served
        served.append(assignment)
        truth = KnownAnswer.objects.get(pair=assignment.pair).side
        side = truth if len(served) <= right else other(truth)
        annotation_submit(assignment_id=assignment.pk, annotator=user, data=label(side, project))


def test_new_annotator_gets_only_qualification_pairs_until_they_pass(qualified_project: Any, users: dict) -> None:
    alice = users["alice"]
    known = set(KnownAnswer.objects.filter(project=qualified_project).values_list("pair_id", flat=True))
    first = claim(qualified_project, alice)
    assert first is not None and first.kind == Assignment.Kind.QUALIFICATION and first.pair_id in known
    assert first.pair.n_claimed == 0  # a check takes no slot of the pair
    annotation_submit(
        assignment_id=first.pk,
        annotator=alice,
        data=label(KnownAnswer.objects.get(pair=first.pair).side, qualified_project),
    )
    status = checks.qualification_status(qualified_project, alice)
    assert (status.state, status.answered, status.total, status.may_label) == ("pending", 1, 3, False)
    served = answer_qualification(qualified_project, alice, right=2)
    assert {a.pair_id for a in served} | {first.pair_id} == known
    status = checks.qualification_status(qualified_project, alice)
    assert (status.state, status.correct, status.answered) == ("passed", 3, 3)
    regular = claim(qualified_project, alice)
    assert regular is not None and regular.kind == Assignment.Kind.REGULAR and regular.pair_id not in known
    labels = Annotation.objects.filter(annotator=alice, assignment__kind=Assignment.Kind.QUALIFICATION)
    assert labels.count() == 3 and all(a.is_retest for a in labels)  # extra labels: none of a pair's N
    assert not Pair.objects.filter(pk__in=known, n_submitted__gt=0).exists()


def test_failing_the_qualification_blocks_real_pairs_until_a_lead_resets_it(
    qualified_project: Any, users: dict
) -> None:
    bob = users["bob"]
    answer_qualification(qualified_project, bob, right=2)  # 2 of 3 < 80%
    status = checks.qualification_status(qualified_project, bob)
    assert (status.state, status.correct, status.answered, status.may_label) == ("failed", 2, 3, False)
    with pytest.raises(ServiceError, match=r"did not pass .*2 of 3 right; 80% needed"):
        assignment_claim_next(project=qualified_project, annotator=bob)
    checks.qualification_reset(project=qualified_project, annotator=bob)
    assert checks.qualification_status(qualified_project, bob).state == "pending"
    answer_qualification(qualified_project, bob, right=3)
    assert checks.qualification_status(qualified_project, bob).state == "passed"


def test_a_lead_can_qualify_by_hand_and_leads_are_exempt(qualified_project: Any, users: dict) -> None:
    answer_qualification(qualified_project, users["carol"], right=0)
    checks.qualification_grant(project=qualified_project, annotator=users["carol"])
    assert claim(qualified_project, users["carol"]).kind == Assignment.Kind.REGULAR
    lead = claim(qualified_project, users["lena"])
    assert lead is not None and lead.kind == Assignment.Kind.REGULAR


def test_an_unqualified_annotator_cannot_submit_a_real_pair_held_from_before(
    qualified_project: Any, users: dict
) -> None:
    alice = users["alice"]
    qualified_project.qualification_required = False
    qualified_project.save()
    held = claim(qualified_project, alice)
    assert held.kind == Assignment.Kind.REGULAR
    qualified_project.qualification_required = True
    qualified_project.save()
    with pytest.raises(ServiceError, match="qualification"):
        annotation_submit(assignment_id=held.pk, annotator=alice, data=label("A", qualified_project))
    nxt = claim(qualified_project, alice)
    assert nxt.kind == Assignment.Kind.QUALIFICATION
    held.refresh_from_db()
    held.pair.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED and held.pair.n_claimed == 0  # its slot went back


def test_annotators_who_labelled_before_qualification_was_required_are_exempt(loaded_project: Any, users: dict) -> None:
    alice = users["alice"]
    first = claim(loaded_project, alice)
    annotation_submit(assignment_id=first.pk, annotator=alice, data=label("A", loaded_project))
    pair = Pair.objects.filter(project=loaded_project).exclude(pk=first.pair_id).order_by("id").first()
    assert pair is not None
    checks.known_answer_set(project=loaded_project, pair_id=pair.pk, purpose="qualification", side="A")
    checks.check_settings_update(
        project=loaded_project, qualification_required=True, qualification_threshold=1.0, attention_check_rate=0
    )
    loaded_project.refresh_from_db()
    assert checks.qualification_status(loaded_project, alice).state == "exempt"
    assert claim(loaded_project, alice).kind == Assignment.Kind.REGULAR
    assert checks.qualification_status(loaded_project, users["bob"]).state == "pending"


def test_settings_are_validated_and_need_check_pairs(loaded_project: Any) -> None:
    with pytest.raises(ValidationError) as err:
        checks.check_settings_update(
            project=loaded_project, qualification_required=True, qualification_threshold=1.5, attention_check_rate=0.9
        )
    assert set(err.value.message_dict) == {"qualification_required", "qualification_threshold", "attention_check_rate"}
    loaded_project.refresh_from_db()
    assert not loaded_project.qualification_required and loaded_project.attention_check_rate == 0
    with pytest.raises(ValidationError, match="not in project"):
        checks.known_answer_set(project=loaded_project, pair_id=10**9, purpose="attention", side="A")
    with pytest.raises(ValidationError, match="A or B"):
        pair = first_pair(loaded_project)
        checks.known_answer_set(project=loaded_project, pair_id=pair.pk, purpose="attention", side="left")


def test_removing_the_last_qualification_pair_switches_qualification_off(qualified_project: Any) -> None:
    for known in KnownAnswer.objects.filter(project=qualified_project):
        checks.known_answer_remove(project=qualified_project, pair_id=known.pair_id)
    qualified_project.refresh_from_db()
    assert not qualified_project.qualification_required


@pytest.fixture
def attention_project(loaded_project: Any) -> Any:
    """The last 4 pairs of the queue are attention checks (answers A, B, A, B); half of the claims are checks."""
    pairs = list(Pair.objects.filter(project=loaded_project).order_by("id"))
    for pair, side in zip(pairs[-4:], "ABAB", strict=True):
        checks.known_answer_set(project=loaded_project, pair_id=pair.pk, purpose="attention", side=side)
    return checks.check_settings_update(
        project=loaded_project, qualification_required=False, qualification_threshold=0.8, attention_check_rate=0.5
    )


def label_all(project: Any, user: Any, rng: random.Random, *, wrong_checks: int = 0) -> dict[str, int]:
    """Label everything served; answer attention checks right except the first ``wrong_checks``."""
    kinds = {"regular": 0, "attention": 0}
    while (assignment := assignment_claim_next(project=project, annotator=user, rng=rng)) is not None:
        kinds[assignment.kind] += 1
        side = "A"
        if assignment.kind == Assignment.Kind.ATTENTION:
            truth = KnownAnswer.objects.get(pair=assignment.pair).side
            side = other(truth) if kinds["attention"] <= wrong_checks else truth
        annotation_submit(assignment_id=assignment.pk, annotator=user, data=label(side, project))
    return kinds


def test_attention_checks_are_mixed_in_and_scored_per_annotator(attention_project: Any, users: dict) -> None:
    alice, bob = users["alice"], users["bob"]
    kinds = label_all(attention_project, alice, random.Random(1), wrong_checks=1)
    assert kinds["attention"] == 4  # every check pair, once each, among her 16 real labels
    assert kinds["regular"] == 16
    label_all(attention_project, bob, random.Random(2), wrong_checks=0)
    results = {r.username: r for r in checks.annotator_check_results(attention_project)}
    assert (results["alice"].attention.answered, results["alice"].attention.correct) == (4, 3)
    assert results["alice"].attention.accuracy == 0.75
    assert results["bob"].attention.accuracy == 1.0
    assert results["carol"].attention.answered == 0 and results["carol"].attention.accuracy is None
    # Check pairs that are still open keep their slots for real labels; check labels count nowhere.
    assert Annotation.objects.filter(assignment__kind=Assignment.Kind.ATTENTION, is_retest=False).count() == 0
    rows = {row.known.pair_id: row for row in checks.known_answer_list(attention_project)}
    assert sum(row.answered for row in rows.values()) == 8 and sum(row.correct for row in rows.values()) == 7


def test_cant_decide_is_a_wrong_answer_and_a_skipped_check_takes_no_slot(attention_project: Any, users: dict) -> None:
    rng = random.Random(5)
    alice = users["alice"]
    while (assignment := claim(attention_project, alice, rng)).kind != "attention":
        annotation_submit(assignment_id=assignment.pk, annotator=alice, data=label("A", attention_project))
    n_claimed = Pair.objects.get(pk=assignment.pair_id).n_claimed
    assignment_release(assignment_id=assignment.pk, annotator=alice)
    assert Pair.objects.get(pk=assignment.pair_id).n_claimed == n_claimed
    while (assignment := claim(attention_project, alice, rng)).kind != "attention":
        annotation_submit(assignment_id=assignment.pk, annotator=alice, data=label("A", attention_project))
    annotation_submit(assignment_id=assignment.pk, annotator=alice, data=label(None, attention_project))
    [result] = checks.annotator_check_results(attention_project, annotator=alice)
    assert (result.attention.answered, result.attention.correct) == (1, 0)


def test_no_attention_checks_when_the_rate_is_zero(loaded_project: Any, users: dict) -> None:
    pair = first_pair(loaded_project)
    checks.known_answer_set(project=loaded_project, pair_id=pair.pk, purpose="attention", side="A")
    kinds = label_all(loaded_project, users["alice"], random.Random(0))
    assert kinds == {"regular": 20, "attention": 0}


def test_guidelines_open_once_and_again_when_they_change(project: Any, users: dict) -> None:
    alice = users["alice"]
    assert checks.guidelines_first_visit(project=project, annotator=alice) is True
    assert checks.guidelines_first_visit(project=project, annotator=alice) is False
    assert checks.guidelines_first_visit(project=project, annotator=users["bob"]) is True
    project.guidelines += "\n\nNew rule."
    project.save()
    assert checks.guidelines_first_visit(project=project, annotator=alice) is True
    project.guidelines = ""
    assert checks.guidelines_first_visit(project=project, annotator=users["carol"]) is False


def test_candidates_suggest_unanimous_pairs_with_their_side(loaded_project: Any, users: dict) -> None:
    rng = random.Random(0)
    for name in ("alice", "bob", "carol"):
        for _ in range(2):
            a = claim(loaded_project, users[name], rng)
            annotation_submit(assignment_id=a.pk, annotator=users[name], data=label("B", loaded_project))
    candidates = checks.known_answer_candidates(loaded_project)
    unanimous = [c for c in candidates if c.why.startswith("all")]
    assert len(unanimous) == 2 and {c.side for c in unanimous} == {"B"}
    assert all(c.why == "the source file's label" for c in candidates[2:])
