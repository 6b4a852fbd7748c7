"""The curation API: agreement, disputes, verified pairs, dataset versions, rounds, training on a version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.services import project_create
from curation.models import BatchGate, CurationRound, DatasetVersion, Dispute, DisputeResolution, VerifiedPair
from rewardmodel.models import TrainingJob
from rewardmodel.services import dataset_file_register
from tests.curation.helpers import A_CLEARLY, PASSING, label_matrix, make_batch, settle
from tests.curation.test_disputes import WITH_DISPUTE, disputed_batch
from tests.rewardmodel.conftest import jsonl

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
def dispute(project: Any, trio: list[Any]) -> Dispute:
    """A passing batch of three pairs: two verified by majority, the third disputed (one "can't decide")."""
    _gate, found = disputed_batch(project, trio, WITH_DISPUTE)
    return found


def base(project: Any) -> str:
    return f"/api/projects/{project.pk}/"


def record(i: int) -> dict[str, Any]:
    return {"prompt": [{"role": "user", "content": f"Question {i}?"}], "chosen": f"Good {i}.", "rejected": f"Bad {i}."}


@pytest.fixture
def version(project: Any, tmp_path: Path, users: dict[str, Any]) -> DatasetVersion:
    """A frozen dataset version with a 5-line training file and a 2-line D_gold file."""
    train = dataset_file_register(path=jsonl(tmp_path / "t.jsonl", [record(i) for i in range(5)]), name="train")
    gold = dataset_file_register(path=jsonl(tmp_path / "g.jsonl", [record(i) for i in range(5, 7)]), name="gold")
    return DatasetVersion.objects.create(
        project=project,
        name="v1",
        train_data=train,
        eval_data=gold,
        filters={"silver": "unverified pairs with a source label"},
        counts={"silver": 3, "gold_train": 2, "gold_val": 2},
        created_by=users["adam"],
    )


# --- roles ---------------------------------------------------------------------------------------


def test_annotators_get_403_on_every_curation_endpoint(
    client_for: ClientFor, project: Any, dispute: Dispute, version: DatasetVersion
) -> None:
    alice = client_for("alice")
    b = base(project)
    for url in (
        "agreement/",
        "disputes/",
        f"disputes/{dispute.pk}/",
        "verified-pairs/",
        "dataset-versions/",
        f"dataset-versions/{version.pk}/download/",
        "rounds/",
    ):
        assert alice.get(b + url).status_code == 403, url
    response = alice.post(b + f"disputes/{dispute.pk}/resolve/", {"decision": A_CLEARLY, "note": "x"}, format="json")
    assert response.status_code == 403
    assert not DisputeResolution.objects.exists()


def test_a_lead_outside_the_project_gets_404_and_anonymous_401(
    client_for: ClientFor, users: dict[str, Any], dispute: Dispute
) -> None:
    other = project_create(name="Other", created_by=users["adam"])
    assert client_for("lena").get(base(other) + "agreement/").status_code == 404
    assert client_for("lena").get(base(other) + f"disputes/{dispute.pk}/").status_code == 404
    assert client_for(None).get(base(dispute.project) + "disputes/").status_code == 401


# --- agreement -----------------------------------------------------------------------------------


def test_agreement_reports_the_stored_batch_gate_and_counts(
    client_for: ClientFor, project: Any, trio: list[Any]
) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None and gate.status == BatchGate.Status.OK

    response = client_for("lena").get(base(project) + "agreement/")

    assert response.status_code == 200
    body = response.json()
    [batch] = body["batches"]
    assert batch["gate_id"] == gate.pk and batch["status"] == "ok"
    assert batch["alpha"] == pytest.approx(889 / 1017)
    assert {d["name"]: d["alpha"] for d in batch["dimensions"]}["preference"] == pytest.approx(889 / 1017)
    assert body["counts"]["verified"] == 3 and body["counts"]["disputes_open"] == 0
    assert body["project"]["alpha_threshold"] == pytest.approx(0.85)


# --- disputes ------------------------------------------------------------------------------------


def test_dispute_list_filters_by_status_and_rejects_an_unknown_one(
    client_for: ClientFor, project: Any, dispute: Dispute
) -> None:
    lena = client_for("lena")
    open_ = lena.get(base(project) + "disputes/").json()
    assert [d["id"] for d in open_["results"]] == [dispute.pk] and open_["next"] is None
    assert open_["results"][0]["votes"] == {"A": 0, "B": 2, "undecidable": 1}
    assert lena.get(base(project) + "disputes/?status=resolved").json()["results"] == []
    bad = lena.get(base(project) + "disputes/?status=closed")
    assert bad.status_code == 400 and "status" in bad.json()


def test_dispute_list_pages_by_keyset(client_for: ClientFor, project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, [(p, [A_CLEARLY, "B_CLEARLY", "UNDECIDABLE"]) for p in pairs])
    settle(project, pairs)
    assert Dispute.objects.count() == 3
    lena = client_for("lena")

    first = lena.get(base(project) + "disputes/?page_size=2").json()
    second = lena.get(first["next"]).json()

    ids = [d["id"] for d in first["results"]] + [d["id"] for d in second["results"]]
    assert ids == sorted(Dispute.objects.values_list("id", flat=True), reverse=True)
    assert second["next"] is None


def test_dispute_detail_shows_every_label_with_rationale_and_attributes(
    client_for: ClientFor, project: Any, dispute: Dispute
) -> None:
    response = client_for("lena").get(base(project) + f"disputes/{dispute.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["pair"]["id"] == dispute.pair_id and body["pair"]["response_a"] == dispute.pair.response_a
    assert sorted(label["annotator"] for label in body["labels"]) == ["alice", "bob", "carol"]
    assert sorted(label["preference"] for label in body["labels"]) == ["B_SLIGHTLY", "B_SLIGHTLY", "UNDECIDABLE"]
    label = body["labels"][0]
    assert label["rationale"].startswith("Chose ") and label["desired_attributes"] == ["helpfulness"]
    assert label["objectivity"] == "opinion" and label["task_category"] == "advice"
    assert body["gate"]["status"] == "ok" and body["resolutions"] == [] and body["verification"] is None
    assert body["evidence"] == [] and body["prediction"] is None


def test_resolve_verifies_the_pair_with_the_leads_label(
    client_for: ClientFor, project: Any, users: dict[str, Any], dispute: Dispute
) -> None:
    response = client_for("lena").post(
        base(project) + f"disputes/{dispute.pk}/resolve/",
        {"decision": "A_CLEARLY", "note": "A cites the source."},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["dispute"]["status"] == "resolved" and body["waiting_for_gate"] is False
    assert body["verified"]["preference"] == "A_CLEARLY" and body["verified"]["via"] == "lead"
    assert body["resolution"]["lead"] == "lena" and body["resolution"]["note"] == "A cites the source."
    row = VerifiedPair.objects.get(pair=dispute.pair)
    assert (row.preference, row.via, row.verified_by) == ("A_CLEARLY", "lead", users["lena"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"decision": "DISCARD", "note": "no"}, "decision"),
        ({"decision": "A_MUCH", "note": "no"}, "decision"),
        ({"decision": "A_CLEARLY"}, "note"),
        ({"decision": "A_CLEARLY", "note": ""}, "note"),
    ],
)
def test_bad_resolve_input_names_the_field_and_changes_nothing(
    client_for: ClientFor, project: Any, dispute: Dispute, payload: dict[str, Any], field: str
) -> None:
    response = client_for("lena").post(base(project) + f"disputes/{dispute.pk}/resolve/", payload, format="json")

    assert response.status_code == 400 and field in response.json()
    dispute.refresh_from_db()
    assert dispute.status == "open" and not DisputeResolution.objects.exists()


def test_discard_removes_the_pair_from_d_gold(client_for: ClientFor, project: Any, dispute: Dispute) -> None:
    lena = client_for("lena")
    url = base(project) + f"disputes/{dispute.pk}/"
    lena.post(url + "resolve/", {"decision": "B_SLIGHTLY", "note": "B."}, format="json")
    assert VerifiedPair.objects.filter(pair=dispute.pair).exists()

    response = lena.post(url + "discard/", {"note": "Both answers are wrong."}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["dispute"]["status"] == "discarded" and body["verified"] is None
    assert body["resolution"]["decision"] == "DISCARD"
    assert not VerifiedPair.objects.filter(pair=dispute.pair).exists()
    assert [r["decision"] for r in lena.get(url).json()["resolutions"]] == ["B_SLIGHTLY", "DISCARD"]


def test_missing_dispute_is_404(client_for: ClientFor, project: Any, dispute: Dispute) -> None:
    response = client_for("lena").post(
        base(project) + f"disputes/{dispute.pk + 1000}/resolve/", {"decision": A_CLEARLY, "note": "x"}, format="json"
    )
    assert response.status_code == 404


# --- verified pairs ------------------------------------------------------------------------------


def test_verified_pairs_page_by_cursor_and_filter_by_via(client_for: ClientFor, project: Any, dispute: Dispute) -> None:
    lena = client_for("lena")
    lena.post(base(project) + f"disputes/{dispute.pk}/resolve/", {"decision": "B_CLEARLY", "note": "B."}, format="json")
    expected = sorted(VerifiedPair.objects.filter(project=project).values_list("pair_id", flat=True))
    assert len(expected) == 3

    first = lena.get(base(project) + "verified-pairs/?page_size=2").json()
    second = lena.get(first["next"]).json()
    assert [r["pair_id"] for r in first["results"] + second["results"]] == expected

    leads = lena.get(base(project) + "verified-pairs/?via=lead").json()["results"]
    assert [(r["pair_id"], r["preference"], r["verified_by"]) for r in leads] == [
        (dispute.pair_id, "B_CLEARLY", "lena")
    ]
    assert lena.get(base(project) + "verified-pairs/?pool=silver").json()["results"] == []
    bad = lena.get(base(project) + "verified-pairs/?via=judge&pool=bronze")
    assert bad.status_code == 400 and {"via", "pool"} <= set(bad.json())


def test_a_pair_verdict_follows_the_dispute_from_open_to_the_leads_label(
    client_for: ClientFor, project: Any, dispute: Dispute
) -> None:
    lena = client_for("lena")
    url = base(project) + f"pairs/{dispute.pair_id}/verdict/"
    before = lena.get(url).json()
    assert before["state"] == "disputed" and before["settled"] is False and before["side"] is None
    assert before["reason"] == dispute.reason and sum(before["votes"].values()) == 3

    lena.post(base(project) + f"disputes/{dispute.pk}/resolve/", {"decision": "B_CLEARLY", "note": "B."}, format="json")
    after = lena.get(url).json()
    assert (after["state"], after["preference"], after["via"], after["pool"]) == (
        "verified",
        "B_CLEARLY",
        "lead",
        "gold",
    )
    assert lena.get(base(project) + "pairs/999999/verdict/").status_code == 404
    assert client_for("alice").get(url).status_code == 403  # annotators never read verdicts through curation


# --- dataset versions ----------------------------------------------------------------------------


def test_dataset_versions_list_with_counts_and_download_links(
    client_for: ClientFor, project: Any, version: DatasetVersion
) -> None:
    lena = client_for("lena")
    body = lena.get(base(project) + "dataset-versions/").json()
    [row] = body["results"]
    assert row["id"] == version.pk and row["counts"] == {"silver": 3, "gold_train": 2, "gold_val": 2}
    assert row["train_data"]["n_records"] == 5 and row["eval_data"]["n_records"] == 2
    assert row["created_by"] == "adam"

    train = lena.get(row["downloads"]["train"])
    gold = lena.get(row["downloads"]["gold"])
    assert train.status_code == 200 and train["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(train.streaming_content).decode().splitlines()]
    assert [r["chosen"] for r in lines] == [f"Good {i}." for i in range(5)]
    assert len(b"".join(gold.streaming_content).decode().splitlines()) == 2
    bad = lena.get(base(project) + f"dataset-versions/{version.pk}/download/?part=everything")
    assert bad.status_code == 400 and "part" in bad.json()


def test_a_version_without_gold_file_has_no_gold_download(
    client_for: ClientFor, project: Any, version: DatasetVersion
) -> None:
    DatasetVersion.objects.filter(pk=version.pk).update(eval_data=None)
    lena = client_for("lena")
    [row] = lena.get(base(project) + "dataset-versions/").json()["results"]
    assert set(row["downloads"]) == {"train"}
    assert lena.get(base(project) + f"dataset-versions/{version.pk}/download/?part=gold").status_code == 404


def test_admin_trains_on_a_dataset_version(
    client_for: ClientFor,
    project: Any,
    version: DatasetVersion,
    tiny_base: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    url = base(project) + f"dataset-versions/{version.pk}/train/"
    with (
        mock.patch("rewardmodel.tasks.training_job_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for("adam").post(
            url, {"base_model": tiny_base, "train": {"max_steps": 2, "batch_size": 2}}, format="json"
        )

    assert response.status_code == 202
    job = TrainingJob.objects.get()
    delay.assert_called_once_with(job_id=job.pk)
    assert (job.train_data_id, job.eval_data_id) == (version.train_data_id, version.eval_data_id)
    assert job.scope == f"project:{project.pk}" and job.config["max_steps"] == 2
    assert response.json()["status_url"].endswith(f"/api/training-jobs/{job.pk}/")


def test_a_lead_cannot_train_and_a_bad_base_model_is_named(
    client_for: ClientFor, project: Any, version: DatasetVersion
) -> None:
    url = base(project) + f"dataset-versions/{version.pk}/train/"
    assert client_for("lena").post(url, {}, format="json").status_code == 403
    bad = client_for("adam").post(url, {"base_model": "/etc", "train": {"batch_size": 0}}, format="json")
    assert bad.status_code == 400 and "base_model" in bad.json() and "batch_size" in bad.json()["train"]
    assert not TrainingJob.objects.exists()


# --- rounds --------------------------------------------------------------------------------------


def test_admin_starts_a_round_and_leads_watch_it(
    client_for: ClientFor, project: Any, django_capture_on_commit_callbacks: Any
) -> None:
    url = base(project) + "rounds/"
    with (
        mock.patch("curation.tasks.curation_round_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for("adam").post(url, {"k_max": 4, "train": {"max_steps": 3}}, format="json")

    assert response.status_code == 202
    round_ = CurationRound.objects.get()
    delay.assert_called_once_with(round_id=round_.pk)
    assert round_.config["k_max"] == 4 and round_.config["train"]["max_steps"] == 3
    status = client_for("lena").get(response.json()["status_url"]).json()
    assert status["number"] == 1 and status["status"] == "queued"
    assert [s["key"] for s in status["steps"]] == list(CurationRound.STEPS)
    assert all(s["status"] == "pending" for s in status["steps"])
    assert [r["id"] for r in client_for("lena").get(url).json()] == [round_.pk]

    again = client_for("adam").post(url, {}, format="json")
    assert again.status_code == 409 and "already" in again.json()["detail"]


def test_round_roles_and_bad_settings(client_for: ClientFor, project: Any) -> None:
    url = base(project) + "rounds/"
    assert client_for("lena").post(url, {}, format="json").status_code == 403
    bad = client_for("adam").post(url, {"k_max": 0, "gold_val_fraction": 2}, format="json")
    assert bad.status_code == 400 and {"k_max", "gold_val_fraction"} <= set(bad.json())
    assert not CurationRound.objects.exists()
    assert client_for("lena").get(url + "999/").status_code == 404
