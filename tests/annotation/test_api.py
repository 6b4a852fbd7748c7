"""The JSON API end to end: auth, projects, pairs, the annotator queue, import and export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Annotation, Assignment, ImportBatch, Pair
from annotation.services import import_batch_run
from annotation.tasks import import_batch_run_task
from tests.conftest import DEMO_FILE, PASSWORD
from tests.factories import PairFactory

ClientFor = Callable[[str | None], APIClient]


@pytest.fixture
def client_for(users: dict[str, Any]) -> ClientFor:
    """An API client authenticated with ``users[name]``'s token (anonymous for None)."""

    def make(name: str | None) -> APIClient:
        client = APIClient()
        if name is not None:
            token, _ = Token.objects.get_or_create(user=users[name])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def two_pairs(project: Any) -> list[Pair]:
    return [PairFactory(project=project), PairFactory(project=project)]


def label(preference: str = "LEFT_CLEARLY", **changes: Any) -> dict[str, Any]:
    data = {
        "preference": preference,
        "task_category": "advice",
        "objectivity": "opinion",
        "controversiality": "low",
        "desired_attributes": ["helpfulness"],
        "guideline": "",
        "rationale": "It answers the question.",
        "time_spent_ms": 1500,
    }
    data.update(changes)
    return data


def next_url(project: Any) -> str:
    return f"/api/projects/{project.pk}/next/"


def submit_url(assignment_id: int) -> str:
    return f"/api/assignments/{assignment_id}/submit/"


def prefer(shown: dict[str, Any], text: str, strength: str = "CLEARLY") -> str:
    """The shown-side choice that prefers the response whose text is ``text``."""
    side = "LEFT" if shown["left"] == text else "RIGHT"
    assert shown["left" if side == "LEFT" else "right"] == text
    return f"{side}_{strength}"


def label_everything(client: APIClient, project: Any, wants_a: bool, strength: str = "CLEARLY") -> int:
    """Claim and label pairs until the queue is empty; prefer response A (or B). Returns how many."""
    done = 0
    while True:
        response = client.post(next_url(project))
        if response.status_code == 204:
            return done
        assert response.status_code == 200, response.content
        shown = response.json()
        pair = Pair.objects.get(pk=shown["pair_id"])
        choice = prefer(shown, pair.response_a if wants_a else pair.response_b, strength)
        submitted = client.post(submit_url(shown["assignment_id"]), label(choice), format="json")
        assert submitted.status_code == 201, submitted.content
        done += 1


# --- auth --------------------------------------------------------------------------------------


def test_token_auth_works(project: Any, users: dict[str, Any]) -> None:
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert token == Token.objects.get(user=users["alice"]).key

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/projects/")
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()] == ["Test project"]

    bad = APIClient().post("/api/auth/token/", {"username": "alice", "password": "wrong"}, format="json")
    assert bad.status_code == 400
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert forged.get("/api/projects/").status_code == 401


def test_session_auth_works(project: Any) -> None:
    client = APIClient()
    assert client.login(username="bob", password=PASSWORD)
    assert client.get(f"/api/projects/{project.pk}/").json()["name"] == "Test project"


# --- projects ----------------------------------------------------------------------------------


def test_admin_creates_reads_and_updates_a_project(client_for: ClientFor) -> None:
    admin = client_for("adam")
    created = admin.post(
        "/api/projects/",
        {"name": "Math", "annotators_per_pair": 5, "taxonomy": ["math", " proof ", "math"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "Math" and body["annotators_per_pair"] == 5
    assert body["taxonomy"] == ["math", "proof"]  # cleaned by the service
    assert created["Location"].endswith(f"/api/projects/{body['id']}/")

    detail = admin.get(f"/api/projects/{body['id']}/")
    assert detail.status_code == 200 and detail.json()["id"] == body["id"]

    patched = admin.patch(f"/api/projects/{body['id']}/", {"guidelines": "Show your work."}, format="json")
    assert patched.status_code == 200
    assert patched.json()["guidelines"] == "Show your work." and patched.json()["annotators_per_pair"] == 5
    assert [p["name"] for p in admin.get("/api/projects/").json()] == ["Math"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Test project"}, "name"),  # unique, checked by the service's full_clean
        ({}, "name"),
        ({"name": "X", "annotators_per_pair": 0}, "annotators_per_pair"),
        ({"name": "X", "claim_timeout_minutes": 0}, "claim_timeout_minutes"),
        ({"name": "X", "taxonomy": []}, "taxonomy"),  # the service refuses an empty list
        ({"name": "X", "desired_attributes": "helpfulness"}, "desired_attributes"),
    ],
)
def test_project_create_validation_names_the_field(
    project: Any, client_for: ClientFor, payload: dict[str, Any], field: str
) -> None:
    response = client_for("adam").post("/api/projects/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_project_update_refuses_fewer_annotators_than_labels_given(
    two_pairs: list[Pair], project: Any, client_for: ClientFor
) -> None:
    for name in ("alice", "bob"):
        assert client_for(name).post(next_url(project)).status_code == 200
    assert Pair.objects.get(pk=two_pairs[0].pk).n_claimed == 2
    response = client_for("adam").patch(f"/api/projects/{project.pk}/", {"annotators_per_pair": 1}, format="json")
    assert response.status_code == 400 and "annotators_per_pair" in response.json()


def test_progress_counts_labels(two_pairs: list[Pair], project: Any, client_for: ClientFor) -> None:
    label_everything(client_for("alice"), project, wants_a=True)
    response = client_for("bob").get(f"/api/projects/{project.pk}/progress/")
    assert response.status_code == 200
    assert response.json() == {
        "total": 2,
        "open": 2,
        "full": 0,
        "complete": 0,
        "labels_needed": 6,
        "labels_given": 2,
        "percent": pytest.approx(100 * 2 / 6),
    }


# --- pairs -------------------------------------------------------------------------------------


def test_pair_list_is_keyset_paginated_by_id(loaded_project: Any, client_for: ClientFor) -> None:
    client = client_for("lena")
    url: str | None = f"/api/projects/{loaded_project.pk}/pairs/?page_size=7"
    seen: list[int] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        seen.extend(p["id"] for p in body["results"])
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 20


def test_pair_list_filters_by_status(two_pairs: list[Pair], project: Any, client_for: ClientFor) -> None:
    Pair.objects.filter(pk=two_pairs[1].pk).update(status=Pair.Status.COMPLETE)
    client = client_for("adam")
    complete = client.get(f"/api/projects/{project.pk}/pairs/?status=complete").json()["results"]
    assert [p["id"] for p in complete] == [two_pairs[1].pk]
    opened = client.get(f"/api/projects/{project.pk}/pairs/", {"status": "open"}).json()["results"]
    assert [p["id"] for p in opened] == [two_pairs[0].pk]
    bad = client.get(f"/api/projects/{project.pk}/pairs/?status=bogus")
    assert bad.status_code == 400 and "status" in bad.json()


# --- the annotator queue -----------------------------------------------------------------------


def test_three_annotators_label_over_the_api_and_export_has_the_majority(
    two_pairs: list[Pair], project: Any, client_for: ClientFor
) -> None:
    assert label_everything(client_for("alice"), project, wants_a=True) == 2
    assert label_everything(client_for("bob"), project, wants_a=True) == 2
    assert label_everything(client_for("carol"), project, wants_a=False, strength="SLIGHTLY") == 2
    assert set(Pair.objects.filter(project=project).values_list("status", flat=True)) == {Pair.Status.COMPLETE}

    # No gate has verified them (no worker here): "all" exports the raw majority, marked unverified.
    assert b"".join(client_for("adam").get(f"/api/projects/{project.pk}/export/").streaming_content) == b""
    response = client_for("adam").get(
        f"/api/projects/{project.pk}/export/?format=conversational&selection=all&labels=true"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert "attachment" in response["Content-Disposition"]
    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [r["pair_id"] for r in records] == [p.pk for p in two_pairs]
    for record, pair in zip(records, two_pairs, strict=True):
        assert record["chosen"] == [{"role": "assistant", "content": pair.response_a}]
        assert record["rejected"] == [{"role": "assistant", "content": pair.response_b}]
        assert record["prompt"] == pair.conversation
        assert record["votes"] == {"chosen": 2, "rejected": 1, "undecidable": 0}
        assert record["strength"] == "clearly" and record["n_annotators"] == 3
        assert (record["verified"], record["state"], record["via"]) == (False, "pending", "majority")
        assert record["attributes"]["task_category"] == "advice"
        assert record["attributes"]["objectivity"] == "opinion"
        assert record["attributes"]["desired_attributes"] == ["helpfulness"]
        assert sorted(label["preference"] for label in record["labels"]) == ["A_CLEARLY", "A_CLEARLY", "B_SLIGHTLY"]

    standard = client_for("lena").get(f"/api/projects/{project.pk}/export/", {"format": "standard", "selection": "all"})
    first = json.loads(b"".join(standard.streaming_content).decode().splitlines()[0])
    assert first["chosen"] == two_pairs[0].response_a and isinstance(first["prompt"], str)


def test_export_rejects_an_unknown_format(project: Any, client_for: ClientFor) -> None:
    response = client_for("adam").get(f"/api/projects/{project.pk}/export/?format=csv")
    assert response.status_code == 400
    assert "format" in response.json()
    response = client_for("adam").get(f"/api/projects/{project.pk}/export/?selection=everything")
    assert response.status_code == 400 and "selection" in response.json()


def test_next_returns_the_same_open_claim_until_submitted(
    two_pairs: list[Pair], project: Any, client_for: ClientFor
) -> None:
    client = client_for("alice")
    first = client.post(next_url(project)).json()
    again = client.post(next_url(project)).json()
    assert first == again
    assert {first["left"], first["right"]} == {two_pairs[0].response_a, two_pairs[0].response_b}
    assert first["taxonomy"] == project.taxonomy and first["desired_attributes"] == project.desired_attributes
    assert first["guidelines"] == project.guidelines and first["expires_at"]
    # Nothing canonical leaks to the annotator.
    assert not {"response_a", "response_b", "source_label", "order_shown", "kind"} & set(first)

    assert client.post(submit_url(first["assignment_id"]), label(), format="json").status_code == 201
    after = client.post(next_url(project)).json()
    assert after["pair_id"] == two_pairs[1].pk and after["assignment_id"] != first["assignment_id"]


def test_next_is_204_when_nothing_is_left(two_pairs: list[Pair], project: Any, client_for: ClientFor) -> None:
    client = client_for("alice")
    assert label_everything(client, project, wants_a=True) == 2
    response = client.post(next_url(project))
    assert response.status_code == 204 and response.content == b""


def test_rejects_fourth_annotator(
    two_pairs: list[Pair], project: Any, users: dict[str, Any], client_for: ClientFor
) -> None:
    assert project.annotators_per_pair == 3
    for name in ("alice", "bob", "carol"):
        label_everything(client_for(name), project, wants_a=True)
    project.members.add(users["dave"])
    assert client_for("dave").post(next_url(project)).status_code == 204
    assert not Assignment.objects.filter(annotator=users["dave"]).exists()


@pytest.mark.parametrize(
    ("order", "shown", "canonical"),
    [
        ("AB", "LEFT_CLEARLY", "A_CLEARLY"),
        ("BA", "LEFT_CLEARLY", "B_CLEARLY"),
        ("AB", "RIGHT_SLIGHTLY", "B_SLIGHTLY"),
        ("BA", "RIGHT_SLIGHTLY", "A_SLIGHTLY"),
        ("AB", "UNDECIDABLE", "UNDECIDABLE"),
        ("BA", "UNDECIDABLE", "UNDECIDABLE"),
    ],
)
def test_shown_preference_is_stored_canonically(
    two_pairs: list[Pair], project: Any, client_for: ClientFor, order: str, shown: str, canonical: str
) -> None:
    client = client_for("alice")
    claim = client.post(next_url(project)).json()
    Assignment.objects.filter(pk=claim["assignment_id"]).update(order_shown=order)
    claim = client.post(next_url(project)).json()  # the same claim, now in the forced order
    pair = two_pairs[0]
    expected = (pair.response_a, pair.response_b) if order == "AB" else (pair.response_b, pair.response_a)
    assert (claim["left"], claim["right"]) == expected

    response = client.post(submit_url(claim["assignment_id"]), label(shown), format="json")
    assert response.status_code == 201
    assert response.json()["preference"] == shown  # as the annotator sees it
    stored = Annotation.objects.get(pk=response.json()["id"])
    assert (stored.preference, stored.order_shown) == (canonical, order)

    mine = client.get(f"/api/pairs/{pair.pk}/").json()
    assert (mine["left"], mine["right"]) == expected
    assert mine["annotation"]["preference"] == shown


def test_submitting_twice_is_a_conflict(two_pairs: list[Pair], project: Any, client_for: ClientFor) -> None:
    client = client_for("alice")
    claim = client.post(next_url(project)).json()
    assert client.post(submit_url(claim["assignment_id"]), label(), format="json").status_code == 201
    again = client.post(submit_url(claim["assignment_id"]), label("RIGHT_CLEARLY"), format="json")
    assert again.status_code == 409
    assert again.json() == {"detail": "you have already labelled this pair"}
    assert Annotation.objects.get().preference in {"A_CLEARLY", "B_CLEARLY"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"preference": "A_CLEARLY"}, "preference"),  # canonical letters are not accepted
        ({"task_category": "knitting"}, "task_category"),  # not in the project's taxonomy (service)
        ({"desired_attributes": ["speed"]}, "desired_attributes"),  # service
        ({"objectivity": "maybe"}, "objectivity"),
        ({"rationale": ""}, "rationale"),
        ({"time_spent_ms": -1}, "time_spent_ms"),
    ],
)
def test_submit_validation_names_the_field(
    two_pairs: list[Pair], project: Any, client_for: ClientFor, changes: dict[str, Any], field: str
) -> None:
    client = client_for("alice")
    claim = client.post(next_url(project)).json()
    response = client.post(submit_url(claim["assignment_id"]), label(**changes), format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert not Annotation.objects.exists()
    assert Assignment.objects.get(pk=claim["assignment_id"]).status == Assignment.Status.CLAIMED


def test_release_returns_the_slot(two_pairs: list[Pair], project: Any, client_for: ClientFor) -> None:
    client = client_for("alice")
    claim = client.post(next_url(project)).json()
    response = client.post(f"/api/assignments/{claim['assignment_id']}/release/")
    assert response.status_code == 204
    assert Pair.objects.get(pk=claim["pair_id"]).n_claimed == 0
    again = client.post(f"/api/assignments/{claim['assignment_id']}/release/")
    assert again.status_code == 409 and again.json()["detail"]


# --- import ------------------------------------------------------------------------------------

GOOD_LINE = {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": "4", "rejected": "5"}


def upload(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="application/jsonl")


def post_import_and_run(client: APIClient, project: Any, file: SimpleUploadedFile, capture: Any) -> dict[str, Any]:
    """POST the file, check the task is queued after commit, then run the import synchronously."""
    with capture(execute=False) as callbacks:
        response = client.post(f"/api/projects/{project.pk}/import/", {"file": file}, format="multipart")
    assert response.status_code == 202, response.content
    queued = response.json()
    assert queued["status"] == ImportBatch.Status.QUEUED
    assert queued["status_url"].endswith(f"/api/imports/{queued['id']}/")
    assert response["Location"] == queued["status_url"]

    with mock.patch.object(import_batch_run_task, "delay") as delay:
        assert len(callbacks) == 1
        callbacks[0]()
    delay.assert_called_once_with(batch_id=queued["id"])
    import_batch_run(batch_id=queued["id"])

    status = client.get(f"/api/imports/{queued['id']}/")
    assert status.status_code == 200
    return status.json()


def test_import_of_a_bad_file_fails_with_line_and_field_errors(
    project: Any, client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    lines = [
        json.dumps(GOOD_LINE),
        json.dumps({k: v for k, v in GOOD_LINE.items() if k != "rejected"}),
        "{not json",
        json.dumps({**GOOD_LINE, "prompt": [{"role": "robot", "content": "hi"}]}),
    ]
    status = post_import_and_run(
        client_for("adam"), project, upload("bad.jsonl", "\n".join(lines) + "\n"), django_capture_on_commit_callbacks
    )
    assert status["status"] == "failed" and status["is_finished"] is True
    assert [(e["line"], e["field"]) for e in status["errors"]] == [(2, "rejected"), (3, ""), (4, "prompt[0].role")]
    assert all(e["message"] for e in status["errors"])
    assert status["n_imported"] == 0
    assert not Pair.objects.filter(project=project).exists()


def test_import_of_a_good_file_imports(
    project: Any, client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    text = "\n".join(DEMO_FILE.read_text(encoding="utf-8").splitlines()[:5]) + "\n"
    status = post_import_and_run(
        client_for("adam"), project, upload("five.jsonl", text), django_capture_on_commit_callbacks
    )
    assert status["status"] == "done" and status["errors"] == []
    assert (status["n_lines"], status["n_imported"], status["n_duplicates"]) == (5, 5, 0)
    assert status["filename"] == "five.jsonl" and status["finished_at"]
    assert Pair.objects.filter(project=project).count() == 5


def test_import_without_a_file_is_400(project: Any, client_for: ClientFor, settings: Any) -> None:
    client = client_for("adam")
    missing = client.post(f"/api/projects/{project.pk}/import/", {}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.json()
    empty = client.post(f"/api/projects/{project.pk}/import/", {"file": upload("e.jsonl", "")}, format="multipart")
    assert empty.status_code == 400 and "file" in empty.json()
    settings.MAX_IMPORT_UPLOAD_BYTES = 10
    big = client.post(
        f"/api/projects/{project.pk}/import/", {"file": upload("big.jsonl", json.dumps(GOOD_LINE))}, format="multipart"
    )
    assert big.status_code == 400 and "file" in big.json()
    assert not ImportBatch.objects.exists()


def test_import_into_a_missing_project_is_404(project: Any, client_for: ClientFor) -> None:
    response = client_for("adam").post(
        "/api/projects/999999/import/", {"file": upload("a.jsonl", "{}")}, format="multipart"
    )
    assert response.status_code == 404 and response.json() == {"detail": "No such project."}


# --- schema ------------------------------------------------------------------------------------


def test_schema_lists_the_main_paths(client_for: ClientFor) -> None:
    response = client_for(None).get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = set(json.loads(response.content)["paths"])
    assert {
        "/api/auth/token/",
        "/api/projects/",
        "/api/projects/{project_id}/",
        "/api/projects/{project_id}/progress/",
        "/api/projects/{project_id}/pairs/",
        "/api/projects/{project_id}/import/",
        "/api/projects/{project_id}/export/",
        "/api/projects/{project_id}/next/",
        "/api/pairs/{pair_id}/",
        "/api/imports/{batch_id}/",
        "/api/assignments/{assignment_id}/submit/",
        "/api/assignments/{assignment_id}/release/",
    } <= paths


def test_schema_generates_without_warnings(tmp_path: Path) -> None:
    # --fail-on-warn raises on any warning (unnamed serializers, enum name clashes, unguessable views).
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi:")
