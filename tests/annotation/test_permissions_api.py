"""Who may reach what through the API: roles give 403, objects out of reach give 404 (existence is not leaked)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, ImportBatch, Pair, Project
from annotation.services import assignment_offer_retest, project_create
from tests.factories import PairFactory

ClientFor = Callable[[str | None], APIClient]


@pytest.fixture
def client_for(users: dict[str, Any]) -> ClientFor:
    def make(name: str | None) -> APIClient:
        client = APIClient()
        if name is not None:
            token, _ = Token.objects.get_or_create(user=users[name])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def pair(project: Any) -> Pair:
    return PairFactory(project=project)


@pytest.fixture
def other_project(users: dict[str, Any]) -> Project:
    """A project alice, carol and lena are not members of; bob is."""
    other = project_create(name="Other project", created_by=users["adam"])
    other.members.add(users["bob"])
    PairFactory(project=other)
    return other


def label(preference: str = "LEFT_CLEARLY") -> dict[str, Any]:
    return {
        "preference": preference,
        "task_category": "advice",
        "objectivity": "opinion",
        "controversiality": "low",
        "desired_attributes": [],
        "rationale": "Because.",
        "time_spent_ms": 1000,
    }


def claim(client: APIClient, project: Any) -> dict[str, Any]:
    response = client.post(f"/api/projects/{project.pk}/next/")
    assert response.status_code == 200, response.content
    return response.json()


def claim_and_submit(client: APIClient, project: Any, preference: str = "LEFT_CLEARLY") -> dict[str, Any]:
    shown = claim(client, project)
    response = client.post(f"/api/assignments/{shown['assignment_id']}/submit/", label(preference), format="json")
    assert response.status_code == 201, response.content
    return shown


def upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("a.jsonl", b'{"prompt": "Hi", "chosen": "a", "rejected": "b"}\n')


# --- anonymous ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/projects/"),
        ("post", "/api/projects/"),
        ("get", "/api/projects/{project}/"),
        ("get", "/api/projects/{project}/progress/"),
        ("get", "/api/projects/{project}/pairs/"),
        ("get", "/api/projects/{project}/export/"),
        ("post", "/api/projects/{project}/import/"),
        ("post", "/api/projects/{project}/next/"),
        ("get", "/api/pairs/{pair}/"),
        ("post", "/api/assignments/1/submit/"),
        ("post", "/api/assignments/1/release/"),
        ("get", "/api/imports/1/"),
    ],
)
def test_anonymous_is_refused(pair: Pair, project: Any, client_for: ClientFor, method: str, path: str) -> None:
    response = getattr(client_for(None), method)(path.format(project=project.pk, pair=pair.pk))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# --- annotators --------------------------------------------------------------------------------


def test_annotator_cannot_get_a_pair_assigned_to_someone_else(pair: Pair, project: Any, client_for: ClientFor) -> None:
    claim_and_submit(client_for("bob"), project)
    response = client_for("alice").get(f"/api/pairs/{pair.pk}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such pair."}
    # The same answer as for a pair that does not exist.
    assert client_for("alice").get("/api/pairs/999999/").json() == response.json()


def test_annotator_sees_only_their_own_label_in_their_order(pair: Pair, project: Any, client_for: ClientFor) -> None:
    alice, bob = client_for("alice"), client_for("bob")
    shown = claim_and_submit(alice, project, "LEFT_SLIGHTLY")
    claim_and_submit(bob, project, "RIGHT_CLEARLY")

    body = alice.get(f"/api/pairs/{pair.pk}/").json()
    assert (body["left"], body["right"]) == (shown["left"], shown["right"])
    assert body["annotation"]["preference"] == "LEFT_SLIGHTLY"
    assert body["annotation"]["rationale"] == "Because."
    assert body["assignment"]["status"] == Assignment.Status.SUBMITTED
    assert "annotations" not in body
    # Nothing canonical: not the letters, the order shown, the source label or the source.
    leaked = {"response_a", "response_b", "source_label", "order_shown", "source", "subset", "metadata"}
    assert not leaked & set(body) and not leaked & set(body["annotation"])


def test_annotator_can_still_get_a_pair_they_skipped(pair: Pair, project: Any, client_for: ClientFor) -> None:
    alice = client_for("alice")
    shown = claim(alice, project)
    assert alice.post(f"/api/assignments/{shown['assignment_id']}/release/").status_code == 204
    body = alice.get(f"/api/pairs/{pair.pk}/").json()
    assert body["assignment"]["status"] == Assignment.Status.EXPIRED and body["annotation"] is None


def test_offered_retest_is_hidden_until_claimed_and_looks_like_any_pair(
    pair: Pair, project: Any, users: dict[str, Any], client_for: ClientFor
) -> None:
    assignment_offer_retest(pair=pair, annotator=users["alice"])
    alice = client_for("alice")
    assert alice.get(f"/api/pairs/{pair.pk}/").status_code == 404  # offered, not yet shown
    shown = claim(alice, project)
    assert shown["pair_id"] == pair.pk
    assert not {"kind", "is_retest"} & set(shown)
    response = alice.post(f"/api/assignments/{shown['assignment_id']}/submit/", label(), format="json")
    assert response.status_code == 201 and "is_retest" not in response.json()
    assert "is_retest" not in alice.get(f"/api/pairs/{pair.pk}/").json()["annotation"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/projects/{project}/pairs/"),
        ("get", "/api/projects/{project}/export/"),
        ("post", "/api/projects/{project}/import/"),
        ("post", "/api/projects/"),
        ("patch", "/api/projects/{project}/"),
    ],
)
def test_annotator_is_refused_reviewer_and_admin_operations(
    pair: Pair, project: Any, client_for: ClientFor, method: str, path: str
) -> None:
    client = client_for("alice")
    payload: dict[str, Any] = {"name": "Mine"}
    fmt = "json"
    if path.endswith("/import/"):
        payload, fmt = {"file": upload()}, "multipart"
    response = getattr(client, method)(path.format(project=project.pk), payload, format=fmt)
    assert response.status_code == 403
    assert not ImportBatch.objects.exists()
    assert Project.objects.filter(name="Mine").count() == 0


def test_non_member_annotator_gets_404_for_the_project(pair: Pair, project: Any, client_for: ClientFor) -> None:
    dave = client_for("dave")
    for path in (f"/api/projects/{project.pk}/", f"/api/projects/{project.pk}/progress/", f"/api/pairs/{pair.pk}/"):
        assert dave.get(path).status_code == 404, path
    assert dave.post(f"/api/projects/{project.pk}/next/").status_code == 404
    assert dave.get("/api/projects/").json() == []
    assert not Assignment.objects.filter(project=project).exists()


def test_annotator_cannot_read_another_projects_pairs_or_queue(
    project: Any, other_project: Project, client_for: ClientFor
) -> None:
    bobs = claim_and_submit(client_for("bob"), other_project)
    alice = client_for("alice")
    assert alice.get(f"/api/pairs/{bobs['pair_id']}/").status_code == 404
    assert alice.post(f"/api/projects/{other_project.pk}/next/").status_code == 404
    assert alice.get(f"/api/projects/{other_project.pk}/").status_code == 404


def test_annotator_cannot_submit_or_release_someone_elses_assignment(
    pair: Pair, project: Any, client_for: ClientFor
) -> None:
    alices = claim(client_for("alice"), project)
    bob = client_for("bob")
    submitted = bob.post(f"/api/assignments/{alices['assignment_id']}/submit/", label(), format="json")
    assert submitted.status_code == 404
    released = bob.post(f"/api/assignments/{alices['assignment_id']}/release/")
    assert released.status_code == 404
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(pk=alices["assignment_id"]).status == Assignment.Status.CLAIMED


def test_annotator_removed_from_the_project_loses_access(
    pair: Pair, project: Any, users: dict[str, Any], client_for: ClientFor
) -> None:
    alice = client_for("alice")
    claim_and_submit(alice, project)
    project.members.remove(users["alice"])
    assert alice.get(f"/api/pairs/{pair.pk}/").status_code == 404
    assert alice.post(f"/api/projects/{project.pk}/next/").status_code == 404


# --- leads and admins --------------------------------------------------------------------------


def test_lead_lists_pairs_and_reads_every_label(pair: Pair, project: Any, client_for: ClientFor) -> None:
    claim_and_submit(client_for("alice"), project)
    claim_and_submit(client_for("bob"), project)
    lena = client_for("lena")
    listed = lena.get(f"/api/projects/{project.pk}/pairs/")
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["results"]] == [pair.pk]

    body = lena.get(f"/api/pairs/{pair.pk}/").json()
    assert (body["response_a"], body["response_b"], body["source_label"]) == (pair.response_a, pair.response_b, "A")
    stored = {a.annotator.username: a for a in Annotation.objects.select_related("annotator")}
    assert [(a["annotator"], a["preference"], a["order_shown"]) for a in body["annotations"]] == [
        (name, stored[name].preference, stored[name].order_shown) for name in ("alice", "bob")
    ]
    assert all(a["is_retest"] is False for a in body["annotations"])
    assert lena.get(f"/api/projects/{project.pk}/export/").status_code == 200


def test_lead_cannot_import_create_projects_or_annotate(pair: Pair, project: Any, client_for: ClientFor) -> None:
    lena = client_for("lena")
    assert lena.post(f"/api/projects/{project.pk}/import/", {"file": upload()}, format="multipart").status_code == 403
    assert lena.post("/api/projects/", {"name": "Lena's"}, format="json").status_code == 403
    assert lena.patch(f"/api/projects/{project.pk}/", {"name": "Renamed"}, format="json").status_code == 403
    assert lena.post(f"/api/projects/{project.pk}/next/").status_code == 403
    assert not ImportBatch.objects.exists() and Project.objects.count() == 1
    assert Project.objects.get().name == "Test project"


def test_lead_gets_404_outside_their_projects(other_project: Project, client_for: ClientFor) -> None:
    lena = client_for("lena")
    other_pair = Pair.objects.get(project=other_project)
    assert lena.get(f"/api/projects/{other_project.pk}/pairs/").status_code == 404
    assert lena.get(f"/api/projects/{other_project.pk}/export/").status_code == 404
    assert lena.get(f"/api/pairs/{other_pair.pk}/").status_code == 404


def test_import_status_is_for_admins(project: Any, users: dict[str, Any], client_for: ClientFor) -> None:
    batch = ImportBatch.objects.create(project=project, filename="x.jsonl", created_by=users["adam"])
    assert client_for("adam").get(f"/api/imports/{batch.pk}/").status_code == 200
    assert client_for("lena").get(f"/api/imports/{batch.pk}/").status_code == 403
    assert client_for("alice").get(f"/api/imports/{batch.pk}/").status_code == 403
    assert client_for("adam").get("/api/imports/999999/").status_code == 404


def test_admin_reaches_every_project_without_membership(other_project: Project, client_for: ClientFor) -> None:
    other_project.members.clear()
    adam = client_for("adam")
    assert adam.get(f"/api/projects/{other_project.pk}/").status_code == 200
    assert adam.get(f"/api/projects/{other_project.pk}/pairs/").status_code == 200
