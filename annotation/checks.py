"""Known-answer checks and first visits: qualification, hidden attention checks, guidelines once.

A lead chooses pairs with a known answer (:class:`~annotation.models.KnownAnswer`):

- **Qualification** (``Project.qualification_required``): an annotator new to the project gets
  only the qualification pairs, one after another, and no real pair until they pass: the share
  answered right must reach ``Project.qualification_threshold``. The decision is taken when the
  last qualification pair is answered and kept (:class:`~annotation.models.AnnotatorOnboarding`);
  a lead can reset it (another attempt) or qualify someone by hand. Annotators who labelled real
  pairs before qualification was required are exempt; so are leads and admins (they choose the
  answers).
- **Attention checks** (``Project.attention_check_rate``): with that probability, each new claim
  of a qualified annotator is an attention-check pair they never held instead of the next real
  pair. Nothing on the page or in the API tells them apart; the score per annotator is on the
  lead's *Checks* page (:func:`annotator_check_results`).

Check labels are extra labels (``Annotation.is_retest``: not one of the pair's N, no agreement
work is triggered); the assignment's kind says which check they answer. "Can't decide" counts as
a wrong answer; the strength is not scored. The known answer never leaves the server for an
annotator: only leads' pages read :class:`~annotation.models.KnownAnswer`.

Services write (keyword-only, validated, atomic); selectors read. ``annotation.services`` calls
the ``claim_*`` and ``qualification_decide`` helpers inside its own transactions.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from annotation import preference
from annotation.models import Annotation, AnnotatorOnboarding, Assignment, KnownAnswer, Pair, Project
from annotation.roles import is_lead

CHECK_KINDS = (Assignment.Kind.QUALIFICATION, Assignment.Kind.ATTENTION)
MAX_ATTENTION_RATE = 0.5
A_CODES = [c for c in preference.DECIDED if preference.side_of(c) == preference.A]
B_CODES = [c for c in preference.DECIDED if preference.side_of(c) == preference.B]
NOT_REQUIRED = "not_required"
LEAD = "lead"
Qualification = AnnotatorOnboarding.Qualification


# --- first visit: the guidelines open once ---------------------------------------------------------


def _guidelines_hash(project: Project) -> str:
    return hashlib.sha256(project.guidelines.strip().encode("utf-8")).hexdigest()


def guidelines_first_visit(*, project: Project, annotator: Any) -> bool:
    """Whether the labelling page should open the guidelines now; records that it did.

    True once per annotator and project, and once more whenever the guidelines' text changes.
    False when the project has no guidelines.
    """
    if not project.guidelines.strip():
        return False
    digest = _guidelines_hash(project)
    with transaction.atomic():
        row, _ = AnnotatorOnboarding.objects.select_for_update().get_or_create(project=project, annotator=annotator)
        if row.guidelines_hash == digest:
            return False
        row.guidelines_hash = digest
        row.guidelines_seen_at = timezone.now()
        row.save(update_fields=["guidelines_hash", "guidelines_seen_at"])
    return True


# --- lead's choices ----------------------------------------------------------------------------------


def check_settings_update(
    *, project: Project, qualification_required: bool, qualification_threshold: float, attention_check_rate: float
) -> Project:
    """Set a project's check settings. Qualification needs at least one qualification pair."""
    errors: dict[str, str] = {}
    if not 0 < qualification_threshold <= 1:
        errors["qualification_threshold"] = "must be more than 0% and at most 100%"
    if not 0 <= attention_check_rate <= MAX_ATTENTION_RATE:
        errors["attention_check_rate"] = f"must be between 0% and {MAX_ATTENTION_RATE:.0%}"
    purposes = set(KnownAnswer.objects.filter(project=project).values_list("purpose", flat=True))
    if qualification_required and KnownAnswer.Purpose.QUALIFICATION not in purposes:
        errors["qualification_required"] = "choose qualification pairs first"
    if attention_check_rate > 0 and KnownAnswer.Purpose.ATTENTION not in purposes:
        errors["attention_check_rate"] = "choose attention-check pairs first"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        project.qualification_required = qualification_required
        project.qualification_threshold = qualification_threshold
        project.attention_check_rate = attention_check_rate
        project.full_clean()
        project.save(update_fields=["qualification_required", "qualification_threshold", "attention_check_rate"])
    return project


def known_answer_set(
    *, project: Project, pair_id: int, purpose: str, side: str, note: str = "", created_by: Any = None
) -> KnownAnswer:
    """Make pair ``pair_id`` of ``project`` a known-answer pair (or change its purpose and answer)."""
    errors: dict[str, str] = {}
    if purpose not in KnownAnswer.Purpose.values:
        errors["purpose"] = f"must be one of {', '.join(KnownAnswer.Purpose.values)}"
    if side not in preference.SIDES:
        errors["side"] = "must be A or B"
    pair = Pair.objects.filter(pk=pair_id, project=project).first()
    if pair is None:
        errors["pair"] = f"pair {pair_id} is not in project {project.name}"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        known, _ = KnownAnswer.objects.update_or_create(
            pair=pair,
            defaults={
                "project": project,
                "purpose": purpose,
                "side": side,
                "note": note.strip(),
                "created_by": created_by,
            },
        )
    return known


def known_answer_remove(*, project: Project, pair_id: int) -> None:
    """Stop using a pair as a check. Answers already given stay, but no longer count."""
    with transaction.atomic():
        deleted, _ = KnownAnswer.objects.filter(project=project, pair_id=pair_id).delete()
        if not deleted:
            raise ValidationError({"pair": f"pair {pair_id} is not a check pair of this project"})
        remaining = set(KnownAnswer.objects.filter(project=project).values_list("purpose", flat=True))
        changes: dict[str, Any] = {}
        if KnownAnswer.Purpose.QUALIFICATION not in remaining:
            changes["qualification_required"] = False
        if KnownAnswer.Purpose.ATTENTION not in remaining:
            changes["attention_check_rate"] = 0.0
        if changes:  # a check with no pairs left is switched off rather than left unsatisfiable
            Project.objects.filter(pk=project.pk).update(**changes)


def qualification_reset(*, project: Project, annotator: Any) -> None:
    """Let an annotator try the qualification again: their qualification answers are cleared."""
    with transaction.atomic():
        row, _ = AnnotatorOnboarding.objects.select_for_update().get_or_create(project=project, annotator=annotator)
        # Test answers, not data: no pair counts them. Deleting the assignments deletes the labels.
        Assignment.objects.filter(project=project, annotator=annotator, kind=Assignment.Kind.QUALIFICATION).delete()
        row.qualification = Qualification.PENDING
        row.qualification_correct = row.qualification_answered = 0
        row.qualification_decided_at = None
        row.qualification_attempt += 1
        row.save()


def qualification_grant(*, project: Project, annotator: Any) -> None:
    """A lead qualifies an annotator by hand (whatever their answers)."""
    with transaction.atomic():
        row, _ = AnnotatorOnboarding.objects.select_for_update().get_or_create(project=project, annotator=annotator)
        row.qualification = Qualification.GRANTED
        row.qualification_decided_at = timezone.now()
        row.save(update_fields=["qualification", "qualification_decided_at"])


# --- qualification status and the gate ------------------------------------------------------------


@dataclass(frozen=True)
class QualificationStatus:
    """Where an annotator stands. ``state``: ``not_required``, ``lead``, or an onboarding state."""

    state: str
    correct: int = 0
    answered: int = 0
    total: int = 0
    threshold: float = 0.0

    @property
    def may_label(self) -> bool:
        """Whether they may take real pairs."""
        return self.state in {NOT_REQUIRED, LEAD, Qualification.PASSED, Qualification.EXEMPT, Qualification.GRANTED}

    @property
    def score(self) -> float | None:
        return self.correct / self.answered if self.answered else None

    @property
    def label(self) -> str:
        if self.state == NOT_REQUIRED:
            return "Not required"
        if self.state == LEAD:
            return "Lead (exempt)"
        return str(Qualification(self.state).label)

    def failed_message(self) -> str:
        return (
            f"You did not pass this project's qualification ({self.correct} of {self.answered} right; "
            f"{self.threshold:.0%} needed). Your lead can let you try again."
        )


def _qualification_answers(project: Project, annotator: Any) -> tuple[int, int]:
    """(correct, answered) over the annotator's labels on the project's current qualification pairs."""
    known = dict(
        KnownAnswer.objects.filter(project=project, purpose=KnownAnswer.Purpose.QUALIFICATION).values_list(
            "pair_id", "side"
        )
    )
    labels = Annotation.objects.filter(
        annotator=annotator, pair_id__in=known, assignment__kind=Assignment.Kind.QUALIFICATION
    ).values_list("pair_id", "preference")
    answered = correct = 0
    for pair_id, code in labels:
        answered += 1
        correct += preference.side_of(code) == known[pair_id]
    return correct, answered


def qualification_status(project: Project, annotator: Any) -> QualificationStatus:
    """The annotator's qualification in ``project`` (read only)."""
    threshold = project.qualification_threshold
    if not project.qualification_required:
        return QualificationStatus(NOT_REQUIRED, threshold=threshold)
    if is_lead(annotator):
        return QualificationStatus(LEAD, threshold=threshold)
    row = AnnotatorOnboarding.objects.filter(project=project, annotator=annotator).first()
    total = KnownAnswer.objects.filter(project=project, purpose=KnownAnswer.Purpose.QUALIFICATION).count()
    if row is not None and row.qualification != Qualification.PENDING:
        return QualificationStatus(
            row.qualification, row.qualification_correct, row.qualification_answered, total, threshold
        )
    if Annotation.objects.filter(pair__project=project, annotator=annotator, is_retest=False).exists():
        return QualificationStatus(Qualification.EXEMPT, threshold=threshold)
    if total == 0:  # every qualification pair was removed: nothing to pass
        return QualificationStatus(NOT_REQUIRED, threshold=threshold)
    correct, answered = _qualification_answers(project, annotator)
    return QualificationStatus(Qualification.PENDING, correct, answered, total, threshold)


def qualification_decide(*, project: Project, annotator: Any) -> QualificationStatus:
    """Take the pass/fail decision once every qualification pair is answered (idempotent).

    Called after each qualification answer, inside the submitting transaction.
    """
    status = qualification_status(project, annotator)
    if status.state != Qualification.PENDING or status.answered < status.total:
        return status
    passed = status.correct >= status.threshold * status.answered - 1e-9
    state = Qualification.PASSED if passed else Qualification.FAILED
    row, _ = AnnotatorOnboarding.objects.select_for_update().get_or_create(project=project, annotator=annotator)
    row.qualification = state
    row.qualification_correct = status.correct
    row.qualification_answered = status.answered
    row.qualification_decided_at = timezone.now()
    row.save()
    return QualificationStatus(state, status.correct, status.answered, status.total, status.threshold)


class QualificationFailed(Exception):
    """The annotator failed the qualification; the message is meant for them."""


def _new_check_assignment(
    project: Project, pair_id: int, annotator: Any, kind: str, now: datetime, rng: random.Random | None
) -> Assignment:
    assignment = Assignment.objects.create(
        project=project,
        pair_id=pair_id,
        annotator=annotator,
        kind=kind,
        status=Assignment.Status.CLAIMED,
        order_shown=(rng or random).choice([Assignment.Order.AB, Assignment.Order.BA]),
        claimed_at=now,
        expires_at=now + timedelta(minutes=project.claim_timeout_minutes),
    )
    return Assignment.objects.select_related("pair").get(pk=assignment.pk)


def claim_qualification(
    *, project: Project, annotator: Any, status: QualificationStatus, now: datetime, rng: random.Random | None = None
) -> Assignment | None:
    """The next qualification pair for an annotator who may not label yet (caller's transaction).

    Pairs never held first, then ones they skipped. None when the annotator may label after all
    (every pair answered and passed). Raises :class:`QualificationFailed` when they failed.
    """
    if status.state == Qualification.FAILED:
        raise QualificationFailed(status.failed_message())
    qualification = KnownAnswer.objects.filter(project=project, purpose=KnownAnswer.Purpose.QUALIFICATION)
    mine = Assignment.objects.filter(pair=OuterRef("pair"), annotator=annotator)
    for held in (mine, mine.exclude(status=Assignment.Status.EXPIRED)):
        pair_id = qualification.filter(~Exists(held)).order_by("id").values_list("pair_id", flat=True).first()
        if pair_id is not None:
            return _new_check_assignment(project, pair_id, annotator, Assignment.Kind.QUALIFICATION, now, rng)
    decided = qualification_decide(project=project, annotator=annotator)
    if decided.state == Qualification.FAILED:
        raise QualificationFailed(decided.failed_message())
    return None


def claim_attention(
    *, project: Project, annotator: Any, now: datetime, rng: random.Random | None = None
) -> Assignment | None:
    """With the project's attention-check rate, an attention-check pair instead of the next real one.

    Only pairs the annotator never held; None when the draw says "real pair" or none is left.
    """
    rate = project.attention_check_rate
    if rate <= 0 or (rng or random).random() >= rate:
        return None
    held = Assignment.objects.filter(pair=OuterRef("pair"), annotator=annotator)
    pair_ids = list(
        KnownAnswer.objects.filter(project=project, purpose=KnownAnswer.Purpose.ATTENTION)
        .filter(~Exists(held))
        .order_by("id")
        .values_list("pair_id", flat=True)[:200]
    )
    if not pair_ids:
        return None
    pair_id = (rng or random).choice(pair_ids)
    return _new_check_assignment(project, pair_id, annotator, Assignment.Kind.ATTENTION, now, rng)


# --- the lead's view: scores per annotator and the check pairs ----------------------------------------


@dataclass
class CheckScore:
    answered: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


@dataclass
class AnnotatorChecks:
    """One annotator's check results in a project (the lead's dashboard; helper for per-annotator pages)."""

    annotator_id: int
    username: str
    qualification: QualificationStatus
    attention: CheckScore = field(default_factory=CheckScore)
    guidelines_seen_at: datetime | None = None


def annotator_check_results(project: Project, *, annotator: Any = None) -> list[AnnotatorChecks]:
    """Qualification and attention-check results of each member (or of ``annotator`` only).

    Attention checks are scored on the labels as they stand now (an edited label counts as
    edited); answers on pairs no longer used as checks are left out.
    """
    members = project.members.order_by("username")
    if annotator is not None:
        members = members.filter(pk=annotator.pk)
    rows = []
    known = dict(
        KnownAnswer.objects.filter(project=project, purpose=KnownAnswer.Purpose.ATTENTION).values_list(
            "pair_id", "side"
        )
    )
    scores: dict[int, CheckScore] = {}
    labels = Annotation.objects.filter(pair_id__in=known, assignment__kind=Assignment.Kind.ATTENTION)
    if annotator is not None:
        labels = labels.filter(annotator=annotator)
    for annotator_id, pair_id, code in labels.values_list("annotator_id", "pair_id", "preference"):
        score = scores.setdefault(annotator_id, CheckScore())
        score.answered += 1
        score.correct += preference.side_of(code) == known[pair_id]
    seen = dict(AnnotatorOnboarding.objects.filter(project=project).values_list("annotator_id", "guidelines_seen_at"))
    for member in members:
        rows.append(
            AnnotatorChecks(
                annotator_id=member.pk,
                username=member.get_username(),
                qualification=qualification_status(project, member),
                attention=scores.get(member.pk, CheckScore()),
                guidelines_seen_at=seen.get(member.pk),
            )
        )
    return rows


@dataclass
class KnownAnswerRow:
    known: KnownAnswer
    answered: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.answered if self.answered else None


def known_answer_list(project: Project) -> list[KnownAnswerRow]:
    """The project's check pairs with how often each was answered, and answered right."""
    known = list(KnownAnswer.objects.filter(project=project).select_related("pair").order_by("purpose", "id"))
    sides = {k.pair_id: k.side for k in known}
    counts: dict[int, list[int]] = {k.pair_id: [0, 0] for k in known}
    labels = Annotation.objects.filter(pair_id__in=sides, assignment__kind__in=CHECK_KINDS).values_list(
        "pair_id", "preference"
    )
    for pair_id, code in labels:
        counts[pair_id][0] += 1
        counts[pair_id][1] += preference.side_of(code) == sides[pair_id]
    return [KnownAnswerRow(k, *counts[k.pair_id]) for k in known]


@dataclass
class Candidate:
    pair: Pair
    side: str
    why: str


def known_answer_candidates(project: Project, *, limit: int = 20) -> list[Candidate]:
    """Pairs a lead may want as checks: complete pairs whose labels all chose one side (the side is
    the suggested answer), then pairs whose source file said which response was preferred."""
    taken = KnownAnswer.objects.filter(pair=OuterRef("pk"))
    regular = Q(annotations__is_retest=False)
    unanimous = (
        Pair.objects.filter(project=project, status=Pair.Status.COMPLETE)
        .filter(~Exists(taken))
        .annotate(
            n=Count("annotations", filter=regular),
            n_a=Count("annotations", filter=regular & Q(annotations__preference__in=A_CODES)),
            n_b=Count("annotations", filter=regular & Q(annotations__preference__in=B_CODES)),
        )
        .filter(Q(n_a=F("n")) | Q(n_b=F("n")), n__gt=0)
        .order_by("id")[:limit]
    )
    out = [
        Candidate(p, preference.A if p.n_a == p.n else preference.B, f"all {p.n} labels agree")  # type: ignore[attr-defined]
        for p in unanimous
    ]
    if len(out) < limit:
        sourced = (
            Pair.objects.filter(project=project)
            .exclude(source_label="")
            .filter(~Exists(taken))
            .exclude(pk__in=[c.pair.pk for c in out])
            .order_by("id")[: limit - len(out)]
        )
        out += [Candidate(p, p.source_label, "the source file's label") for p in sourced]
    return out
