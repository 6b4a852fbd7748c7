"""The Checks page (leads), the labelling page and API with check pairs: known answers never leak."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import checks
from annotation.models import Assignment, KnownAnswer, Pair, Project
from annotation.services import assignment_claim_next


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def checks_url(project: Project, name: str = "project-checks") -> str:
    return reverse(f"annotation:{name}", args=[project.pk])


@pytest.fixture
def attention_only(loaded_project: Project) -> Project:
    """Every claim is an attention check while check pairs are left (rate capped at 50%: forced below)."""
    pair = Pair.objects.filter(project=loaded_project).order_by("-id").first()
    assert pair is not None
    checks.known_answer_set(project=loaded_project, pair_id=pair.pk, purpose="attention", side="B", note="SECRET-NOTE")
    Project.objects.filter(pk=loaded_project.pk).update(attention_check_rate=0.5)
    loaded_project.refresh_from_db()
    return loaded_project


def _claim_attention(project: Project, user: Any) -> Assignment:
    rng = random.Random(0)
    for _ in range(50):
        assignment = assignment_claim_next(project=project, annotator=user, rng=rng)
        assert assignment is not None
        if assignment.kind == Assignment.Kind.ATTENTION:
            return assignment
        Assignment.objects.filter(pk=assignment.pk).delete()  # put the real pair back untouched
        Pair.objects.filter(pk=assignment.pair_id).update(n_claimed=0, status=Pair.Status.OPEN)
    raise AssertionError("no attention check drawn")


def test_leads_and_admins_open_the_checks_page_annotators_and_outsiders_do_not(
    loaded_project: Project, users: dict
) -> None:
    assert client_for(users["lena"]).get(checks_url(loaded_project)).status_code == 200
    assert client_for(users["adam"]).get(checks_url(loaded_project)).status_code == 200
    assert client_for(users["alice"]).get(checks_url(loaded_project)).status_code == 403
    assert client_for(users["dave"]).get(checks_url(loaded_project)).status_code == 404
    response = client_for(users["alice"]).post(
        checks_url(loaded_project, "project-checks-add"), {"pair": 1, "purpose": "attention", "side": "A"}
    )
    assert response.status_code == 403 and not KnownAnswer.objects.exists()


def test_a_lead_adds_pairs_and_sets_the_thresholds(loaded_project: Project, users: dict) -> None:
    lena = client_for(users["lena"])
    pair = Pair.objects.filter(project=loaded_project).order_by("id").first()
    assert pair is not None
    response = lena.post(
        checks_url(loaded_project, "project-checks-add"),
        {"pair": pair.pk, "purpose": "qualification", "side": "A", "note": "the refusal is right"},
    )
    assert response.status_code == 302
    assert KnownAnswer.objects.get(pair=pair).purpose == "qualification"
    response = lena.post(
        checks_url(loaded_project, "project-checks-settings"),
        {"qualification_required": "on", "qualification_threshold": "75", "attention_check_rate": "0"},
    )
    assert response.status_code == 302
    loaded_project.refresh_from_db()
    assert loaded_project.qualification_required and loaded_project.qualification_threshold == 0.75
    page = lena.get(checks_url(loaded_project)).content.decode()
    assert f"#{pair.pk}" in page and "the refusal is right" in page


def test_bad_input_is_named_and_changes_nothing(loaded_project: Project, users: dict) -> None:
    lena = client_for(users["lena"])
    response = lena.post(
        checks_url(loaded_project, "project-checks-settings"),
        {"qualification_required": "on", "qualification_threshold": "80", "attention_check_rate": "10"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "choose qualification pairs first" in page and "choose attention-check pairs first" in page
    response = lena.post(
        checks_url(loaded_project, "project-checks-add"), {"pair": "999999", "purpose": "attention", "side": "A"}
    )
    assert response.status_code == 400 and "is not in project" in response.content.decode()
    response = lena.post(checks_url(loaded_project, "project-checks-settings"), {"qualification_threshold": "x"})
    assert response.status_code == 400
    loaded_project.refresh_from_db()
    assert not loaded_project.qualification_required and not KnownAnswer.objects.exists()


def test_attention_check_page_looks_like_any_pair_and_holds_no_answer(attention_only: Project, users: dict) -> None:
    alice = users["alice"]
    assignment = _claim_attention(attention_only, alice)
    page = client_for(alice).get(reverse("annotation:pair-label", args=[attention_only.pk])).content.decode()
    assert f'data-assignment="{assignment.pk}"' in page
    # (the pairs are real text, so plain words like "attention" may well be in them)
    for leak in ("SECRET-NOTE", "Attention check", "known answer", "known_answer", "ualification", "B is better"):
        assert leak not in page, leak


def test_attention_check_in_the_api_has_the_keys_of_any_pair(attention_only: Project, users: dict) -> None:
    alice = users["alice"]
    assignment = _claim_attention(attention_only, alice)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=alice)[0].key}")
    body = api.post(f"/api/projects/{attention_only.pk}/next/").json()
    assert body["assignment_id"] == assignment.pk
    assert "SECRET-NOTE" not in str(body)
    detail = api.get(f"/api/pairs/{assignment.pair_id}/").json()
    assert "SECRET-NOTE" not in str(detail) and "kind" not in str(detail["assignment"])
    # A real pair (no checks drawn at rate 0) answers with exactly the same fields.
    Project.objects.filter(pk=attention_only.pk).update(attention_check_rate=0)
    bob = APIClient()
    bob.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=users['bob'])[0].key}")
    regular = bob.post(f"/api/projects/{attention_only.pk}/next/").json()
    assert Assignment.objects.get(pk=regular["assignment_id"]).kind == Assignment.Kind.REGULAR
    assert set(regular) == set(body)
    regular_detail = bob.get(f"/api/pairs/{regular['pair_id']}/").json()
    assert set(regular_detail) == set(detail) and set(regular_detail["assignment"]) == set(detail["assignment"])


def test_qualification_pairs_say_so_without_the_answer(loaded_project: Project, users: dict) -> None:
    pair = Pair.objects.filter(project=loaded_project).order_by("id").first()
    assert pair is not None
    checks.known_answer_set(project=loaded_project, pair_id=pair.pk, purpose="qualification", side="A", note="NOTE-Q")
    checks.check_settings_update(
        project=loaded_project, qualification_required=True, qualification_threshold=1.0, attention_check_rate=0
    )
    page = client_for(users["alice"]).get(reverse("annotation:pair-label", args=[loaded_project.pk])).content.decode()
    assert 'id="qualification-banner"' in page and "pair 1 of 1" in page
    assert "NOTE-Q" not in page and "A is better" not in page


def test_guidelines_open_on_the_first_visit_only(loaded_project: Project, users: dict) -> None:
    alice = client_for(users["alice"])
    url = reverse("annotation:pair-label", args=[loaded_project.pk])
    assert "data-first-visit" in alice.get(url).content.decode()
    assert "data-first-visit" not in alice.get(url).content.decode()
    assert "data-first-visit" in client_for(users["bob"]).get(url).content.decode()
    # htmx fragments (submit-and-next) never spend the first visit
    carol = client_for(users["carol"])
    carol.get(url, HTTP_HX_REQUEST="true")
    assert "data-first-visit" in carol.get(url).content.decode()
