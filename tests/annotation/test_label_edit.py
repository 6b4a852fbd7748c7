"""Editing a submitted label until its pair is verified: the service, the audit, the signal, the pages."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotation, AnnotationRevision, Project
from annotation.preference import canonical_to_shown
from annotation.services import ServiceError, annotation_edit, annotation_submit, assignment_claim_next
from annotation.signals import annotation_submitted
from curation.models import VerifiedPair
from tests.annotation.test_views import client_for, label_data, service_label

pytestmark = pytest.mark.django_db


def _labelled(project: Project, user: Any, preference: str = "A_CLEARLY") -> Annotation:
    assignment = assignment_claim_next(project=project, annotator=user)
    assert assignment is not None
    return annotation_submit(assignment_id=assignment.pk, annotator=user, data=service_label(preference))


def _verify(annotation: Annotation) -> None:
    VerifiedPair.objects.create(
        pair=annotation.pair,
        project=annotation.pair.project,
        batch_key="b",
        side="A",
        strength="clearly",
        via=VerifiedPair.Via.MAJORITY,
        verified_at=timezone.now(),
    )


def edit_url(project: Project, annotation: Annotation) -> str:
    return reverse("annotation:annotation-edit", args=[project.pk, annotation.pk])


def test_edit_changes_the_label_and_keeps_the_old_one_in_the_audit(
    loaded_project: Project, users: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    annotation = _labelled(loaded_project, users["alice"], "A_CLEARLY")
    first_time = annotation.time_spent_ms
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    annotation_submitted.connect(receiver, dispatch_uid="test-edit")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            revision = annotation_edit(
                annotation_id=annotation.pk,
                annotator=users["alice"],
                data=replace(
                    service_label("B_SLIGHTLY", rationale="On second reading B is better."), time_spent_ms=900
                ),
            )
    finally:
        annotation_submitted.disconnect(dispatch_uid="test-edit")

    annotation.refresh_from_db()
    assert annotation.preference == "B_SLIGHTLY" and annotation.rationale == "On second reading B is better."
    assert annotation.time_spent_ms == first_time  # the first submit's time stays; the edit's is on the revision
    assert revision is not None and revision.time_spent_ms == 900 and revision.editor == users["alice"]
    assert revision.before["preference"] == "A_CLEARLY" and revision.after["preference"] == "B_SLIGHTLY"
    assert revision.before["rationale"] == "Because."
    # The same signal a submit sends, so curation recomputes agreement for the pair.
    assert [(s["annotation_id"], s["pair_id"], s["edited"]) for s in sent] == [
        (annotation.pk, annotation.pair_id, True)
    ]


def test_an_edit_that_changes_nothing_leaves_no_revision(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"])
    assert annotation_edit(annotation_id=annotation.pk, annotator=users["alice"], data=service_label()) is None
    assert not AnnotationRevision.objects.exists()


def test_shown_preference_is_mapped_with_the_labels_own_order(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"], "A_CLEARLY")
    annotation_edit(
        annotation_id=annotation.pk, annotator=users["alice"], data=service_label("RIGHT_CLEARLY"), shown=True
    )
    annotation.refresh_from_db()
    assert annotation.preference == ("B_CLEARLY" if annotation.order_shown == "AB" else "A_CLEARLY")


def test_nobody_edits_someone_elses_label(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"])
    with pytest.raises(ServiceError, match="not yours"):
        annotation_edit(annotation_id=annotation.pk, annotator=users["bob"], data=service_label("B_CLEARLY"))
    annotation.refresh_from_db()
    assert annotation.preference == "A_CLEARLY" and not AnnotationRevision.objects.exists()


def test_a_verified_pairs_label_is_final(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"])
    _verify(annotation)
    with pytest.raises(ServiceError, match="verified"):
        annotation_edit(annotation_id=annotation.pk, annotator=users["alice"], data=service_label("B_CLEARLY"))
    annotation.refresh_from_db()
    assert annotation.preference == "A_CLEARLY" and not AnnotationRevision.objects.exists()


def test_a_bad_edit_is_a_field_error_and_changes_nothing(loaded_project: Project, users: dict[str, Any]) -> None:
    from django.core.exceptions import ValidationError

    annotation = _labelled(loaded_project, users["alice"])
    with pytest.raises(ValidationError) as exc:
        annotation_edit(
            annotation_id=annotation.pk, annotator=users["alice"], data=service_label("B_CLEARLY", rationale="  ")
        )
    assert "rationale" in exc.value.message_dict
    annotation.refresh_from_db()
    assert annotation.preference == "A_CLEARLY"


# --- pages ---------------------------------------------------------------------------------------


def test_edit_page_shows_the_label_as_the_annotator_gave_it(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"], "A_SLIGHTLY")
    html = client_for(users["alice"]).get(edit_url(loaded_project, annotation)).content.decode()
    shown = canonical_to_shown("A_SLIGHTLY", annotation.order_shown)
    assert re.search(rf'name="preference" value="{shown}"[^>]*checked', html)
    assert re.search(r'name="task_category" value="advice"[^>]*checked', html)
    assert "Because." in html and "Save changes" in html and "You are editing your label" in html


def test_edit_page_saves_and_returns_to_the_queue(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"], "A_CLEARLY")
    client = client_for(users["alice"])
    data = label_data(annotation.assignment_id, preference="UNDECIDABLE", rationale="Both are wrong.")
    response = client.post(edit_url(loaded_project, annotation), data, follow=True)
    assert response.redirect_chain[-1][0] == reverse("annotation:project-queue", args=[loaded_project.pk])
    assert "Label updated." in response.content.decode()
    annotation.refresh_from_db()
    assert annotation.preference == "UNDECIDABLE" and annotation.revisions.count() == 1


def test_a_saved_edit_has_the_queue_page_drop_its_browser_draft_once(
    loaded_project: Project, users: dict[str, Any]
) -> None:
    annotation = _labelled(loaded_project, users["alice"], "A_CLEARLY")
    client = client_for(users["alice"])
    marker = f'data-drop-draft="edit-{annotation.pk}"'
    bad = client.post(edit_url(loaded_project, annotation), label_data(annotation.assignment_id, rationale=" "))
    assert bad.status_code == 200 and marker not in bad.content.decode()  # not saved: the draft stays
    queue = reverse("annotation:project-queue", args=[loaded_project.pk])
    assert marker not in client.get(queue).content.decode()
    data = label_data(annotation.assignment_id, preference="UNDECIDABLE", rationale="Both are wrong.")
    response = client.post(edit_url(loaded_project, annotation), data, follow=True)
    html = response.content.decode()
    assert marker in html and "js/drop_draft.js" in html
    assert marker not in client.get(queue).content.decode()  # once: a later visit drops nothing


def test_edit_page_errors_are_inline_and_change_nothing(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"])
    response = client_for(users["alice"]).post(
        edit_url(loaded_project, annotation), label_data(annotation.assignment_id, rationale=" ")
    )
    html = response.content.decode()
    assert response.status_code == 200 and "Not saved yet" in html and "Write a short rationale" in html
    assert not AnnotationRevision.objects.exists()


def test_queue_offers_edit_only_until_verified(loaded_project: Project, users: dict[str, Any]) -> None:
    first = _labelled(loaded_project, users["alice"])
    second = _labelled(loaded_project, users["alice"])
    _verify(first)
    client = client_for(users["alice"])
    html = client.get(reverse("annotation:project-queue", args=[loaded_project.pk])).content.decode()
    assert edit_url(loaded_project, second) in html and edit_url(loaded_project, first) not in html
    response = client.get(edit_url(loaded_project, first), follow=True)
    assert "can no longer be changed" in response.content.decode()


def test_others_cannot_open_the_edit_page(loaded_project: Project, users: dict[str, Any]) -> None:
    annotation = _labelled(loaded_project, users["alice"])
    assert client_for(users["bob"]).get(edit_url(loaded_project, annotation)).status_code == 404
    assert client_for(users["dave"]).get(edit_url(loaded_project, annotation)).status_code == 404  # not a member
    assert client_for(users["lena"]).get(edit_url(loaded_project, annotation)).status_code == 403  # not an annotator
