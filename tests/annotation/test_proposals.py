"""LLM attribute proposals on the annotation side: stored checked, pre-filled and marked, changes recorded."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from annotation import proposals
from annotation.models import Annotation, Pair, Project
from annotation.services import AnnotationInput, annotation_edit
from tests.annotation.test_views import HX, client_for, label_data, label_url, open_claim

PROPOSED = {
    "task_category": "advice",
    "objectivity": "factual",
    "controversiality": "low",
    "desired_attributes": ["honesty", "helpfulness"],
    "guideline": "say what\nyou do not know",
}


def _propose_all(project: Project) -> None:
    for pair_id in Pair.objects.filter(project=project).values_list("pk", flat=True):
        proposals.attribute_proposal_set(pair_id=pair_id, values=PROPOSED, source="LLM judges: stub")


def test_a_proposal_is_checked_and_stored_one_line(loaded_project: Project) -> None:
    pair = Pair.objects.filter(project=loaded_project).first()
    stored = proposals.attribute_proposal_set(pair_id=pair.pk, values=PROPOSED, source="LLM judges: stub")
    proposal = stored.attribute_proposal
    assert proposal["guideline"] == "say what you do not know" and proposal["source"] == "LLM judges: stub"
    # The project's order, whatever the LLM's.
    assert proposal["desired_attributes"] == [
        a for a in loaded_project.desired_attributes if a in PROPOSED["desired_attributes"]
    ]
    with pytest.raises(ValidationError) as info:
        proposals.attribute_proposal_set(
            pair_id=pair.pk, values={**PROPOSED, "task_category": "astrology", "objectivity": "x"}, source="s"
        )
    assert set(info.value.message_dict) == {"task_category", "objectivity"}
    pair.refresh_from_db()
    assert pair.attribute_proposal == proposal  # unchanged by the refused one


def test_the_page_prefills_the_proposal_marked_and_the_label_records_changes(
    loaded_project: Project, users: dict[str, Any]
) -> None:
    _propose_all(loaded_project)
    client = client_for(users["alice"])
    html = client.get(label_url(loaded_project)).content.decode()
    assert 'id="attribute-proposal"' in html and "proposed by an LLM (LLM judges: stub)" in html
    assert re.search(r'name="objectivity" value="factual"[^>]*checked', html)
    assert re.search(r'name="desired_attributes" value="honesty"[^>]*checked', html)
    assert 'value="say what you do not know"' in html
    assignment = open_claim(loaded_project, users["alice"])
    # The annotator keeps the category and the attributes, changes objectivity and the guideline.
    data = label_data(
        assignment.pk, objectivity="opinion", desired_attributes=["helpfulness", "honesty"], guideline="be brief"
    )
    assert client.post(label_url(loaded_project), data, **HX).status_code == 200
    review = Annotation.objects.get(assignment=assignment).proposal_review
    accepted = {name: review[name]["accepted"] for name in proposals.PROPOSAL_FIELDS}
    assert accepted == {
        "task_category": True,
        "objectivity": False,
        "controversiality": True,
        "desired_attributes": True,
        "guideline": False,
    }
    assert review["objectivity"] == {"proposed": "factual", "submitted": "opinion", "accepted": False}
    rates = {r.attribute: (r.accepted, r.n) for r in proposals.proposal_acceptance(loaded_project)}
    assert rates["objectivity"] == (0, 1) and rates["task_category"] == (1, 1)


def test_an_edit_is_reviewed_again_against_the_same_proposal(loaded_project: Project, users: dict[str, Any]) -> None:
    _propose_all(loaded_project)
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    client.post(label_url(loaded_project), label_data(assignment.pk, objectivity="opinion"), **HX)
    annotation = Annotation.objects.get(assignment=assignment)
    Pair.objects.filter(pk=annotation.pair_id).update(attribute_proposal=None)  # the proposal on the pair may go
    annotation_edit(
        annotation_id=annotation.pk,
        annotator=users["alice"],
        data=AnnotationInput(
            preference=annotation.preference,
            task_category="advice",
            objectivity="factual",
            controversiality="low",
            desired_attributes=["helpfulness"],
            guideline="say what you do not know",
            rationale="changed my mind",
            time_spent_ms=100,
        ),
    )
    annotation.refresh_from_db()
    assert annotation.proposal_review["objectivity"]["accepted"] is True
    assert annotation.proposal_review["guideline"]["accepted"] is True
    assert annotation.proposal_review["desired_attributes"]["accepted"] is False


def test_labels_without_a_proposal_record_nothing(loaded_project: Project, users: dict[str, Any]) -> None:
    client = client_for(users["alice"])
    html = client.get(label_url(loaded_project)).content.decode()
    assert 'id="attribute-proposal"' not in html
    assignment = open_claim(loaded_project, users["alice"])
    client.post(label_url(loaded_project), label_data(assignment.pk), **HX)
    assert Annotation.objects.get(assignment=assignment).proposal_review is None
    assert all(r.n == 0 and r.rate is None for r in proposals.proposal_acceptance(loaded_project))


def test_labelled_pairs_get_no_proposal(loaded_project: Project, users: dict[str, Any]) -> None:
    client = client_for(users["alice"])
    client.get(label_url(loaded_project))
    assignment = open_claim(loaded_project, users["alice"])
    client.post(label_url(loaded_project), label_data(assignment.pk), **HX)
    with pytest.raises(ValidationError, match="already has human labels"):
        proposals.attribute_proposal_set(pair_id=assignment.pair_id, values=PROPOSED, source="s")
