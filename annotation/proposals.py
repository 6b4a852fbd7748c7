"""Attribute proposals: the five attributes an LLM proposed for an unlabelled pair, checked by humans.

Curation (the LLM judges) writes a proposal through :func:`attribute_proposal_set`; annotation
never imports curation. The labelling page pre-fills the proposal and marks it as one; when the
annotator submits, :func:`proposal_review_of` records per attribute what was proposed, what they
submitted and whether they kept it (``Annotation.proposal_review``); :func:`proposal_acceptance`
gives the acceptance rate per attribute for the lead's dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotation.models import Annotation, Controversiality, Objectivity, Pair, Project

#: The five attributes, in the order the labelling page shows them.
PROPOSAL_FIELDS = ("task_category", "objectivity", "controversiality", "desired_attributes", "guideline")


def proposal_clean(project: Project, values: dict[str, Any]) -> dict[str, Any]:
    """The proposal's five values, checked against the project's taxonomy and attributes.

    Raises ValidationError naming each bad field. ``guideline`` is one line (newlines become spaces,
    at most 300 characters); ``desired_attributes`` keeps the project's order, without duplicates.
    """
    errors: dict[str, str] = {}
    category = values.get("task_category")
    if category not in project.taxonomy:
        errors["task_category"] = f"{category!r} is not one of the project's task categories"
    if values.get("objectivity") not in Objectivity.values:
        errors["objectivity"] = f"must be one of {', '.join(Objectivity.values)}"
    if values.get("controversiality") not in Controversiality.values:
        errors["controversiality"] = f"must be one of {', '.join(Controversiality.values)}"
    desired = values.get("desired_attributes") or []
    if not isinstance(desired, list | tuple) or any(a not in project.desired_attributes for a in desired):
        errors["desired_attributes"] = "must be a list of the project's desired attributes"
    guideline = values.get("guideline") or ""
    if not isinstance(guideline, str):
        errors["guideline"] = "must be text"
    if errors:
        raise ValidationError(errors)
    return {
        "task_category": category,
        "objectivity": values["objectivity"],
        "controversiality": values["controversiality"],
        "desired_attributes": [a for a in project.desired_attributes if a in set(desired)],
        "guideline": " ".join(str(guideline).split())[:300],
    }


def attribute_proposal_set(*, pair_id: int, values: dict[str, Any], source: str) -> Pair:
    """Store an LLM's proposal on a pair that has no human label yet (replacing an older proposal).

    Raises ValidationError for a bad value (naming the field) or a pair humans already labelled.
    """
    with transaction.atomic():
        pair = Pair.objects.select_for_update().select_related("project").filter(pk=pair_id).first()
        if pair is None:
            raise ValidationError(f"no pair {pair_id}")
        if pair.n_submitted or pair.annotations.exists():
            raise ValidationError(f"pair {pair_id} already has human labels; proposals are for unlabelled pairs")
        clean = proposal_clean(pair.project, values)
        pair.attribute_proposal = {**clean, "source": source[:200], "proposed_at": timezone.now().isoformat()}
        pair.save(update_fields=["attribute_proposal"])
    return pair


def proposal_initial(pair: Pair) -> dict[str, Any]:
    """The labelling form's initial values from the pair's proposal ({} when it has none)."""
    proposal = pair.attribute_proposal
    if not isinstance(proposal, dict):
        return {}
    return {name: proposal[name] for name in PROPOSAL_FIELDS if name in proposal}


def _same(name: str, proposed: Any, submitted: Any) -> bool:
    if name == "desired_attributes":
        return set(proposed or []) == set(submitted or [])
    if name == "guideline":
        return " ".join(str(proposed or "").split()) == " ".join(str(submitted or "").split())
    return bool(proposed == submitted)


def proposal_review_of(proposal: dict[str, Any] | None, submitted: dict[str, Any]) -> dict[str, Any] | None:
    """Per attribute: ``{"proposed", "submitted", "accepted"}``, or None when there was no proposal.

    ``proposal`` is the pair's proposal (or an earlier review's ``proposed`` values, on an edit).
    """
    if not isinstance(proposal, dict):
        return None
    review: dict[str, Any] = {}
    for name in PROPOSAL_FIELDS:
        if name not in proposal:
            continue
        value = submitted.get(name)
        review[name] = {"proposed": proposal[name], "submitted": value, "accepted": _same(name, proposal[name], value)}
    if isinstance(proposal.get("source"), str):
        review["source"] = proposal["source"]
    return review or None


def proposed_values(review: dict[str, Any] | None) -> dict[str, Any] | None:
    """The proposed values a review was made against (to review an edited label again)."""
    if not isinstance(review, dict):
        return None
    values = {name: review[name]["proposed"] for name in PROPOSAL_FIELDS if isinstance(review.get(name), dict)}
    return {**values, "source": review.get("source")} if values else None


@dataclass(frozen=True)
class Acceptance:
    """How often annotators kept an attribute as proposed: ``accepted`` of ``n`` labels."""

    attribute: str
    accepted: int
    n: int

    @property
    def label(self) -> str:
        return self.attribute.replace("_", " ").capitalize()

    @property
    def rate(self) -> float | None:
        return self.accepted / self.n if self.n else None


def acceptance_from(reviews: Iterable[dict[str, Any] | None]) -> list[Acceptance]:
    """Acceptance per attribute from labels' reviews (labels without a proposal are skipped)."""
    accepted = dict.fromkeys(PROPOSAL_FIELDS, 0)
    n = dict.fromkeys(PROPOSAL_FIELDS, 0)
    for review in reviews:
        if not isinstance(review, dict):
            continue
        for name in PROPOSAL_FIELDS:
            item = review.get(name)
            if isinstance(item, dict):
                n[name] += 1
                accepted[name] += bool(item.get("accepted"))
    return [Acceptance(name, accepted[name], n[name]) for name in PROPOSAL_FIELDS]


def proposal_acceptance(project: Project) -> list[Acceptance]:
    """The acceptance rate per attribute over the project's labels made on a proposal (retests included)."""
    reviews = Annotation.objects.filter(pair__project=project, proposal_review__isnull=False).values_list(
        "proposal_review", flat=True
    )
    return acceptance_from(reviews.iterator(chunk_size=2000))


def proposal_counts(project: Project) -> dict[str, int]:
    """Pairs carrying a proposal, and how many of those humans have labelled."""
    pairs = Pair.objects.filter(project=project, attribute_proposal__isnull=False)
    return {"proposed": pairs.count(), "labelled": pairs.filter(n_submitted__gt=0).count()}
