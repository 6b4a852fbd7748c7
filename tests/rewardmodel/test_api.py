"""The reward-model API: data files, training jobs (launch, status with curve, cancel, resume), evaluations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from rewardmodel.models import DatasetFile, EvaluationRun, ModelVersion, TrainingJob
from rewardmodel.services import dataset_file_register, training_job_create
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


def upload(name: str, records: list[dict[str, Any]], tmp_path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, jsonl(tmp_path / name, records).read_bytes())


@pytest.fixture
def data_file(rm_records: list[dict[str, Any]], tmp_path: Path) -> DatasetFile:
    return dataset_file_register(path=jsonl(tmp_path / "d.jsonl", rm_records[:12]), name="d.jsonl")


@pytest.fixture
def job(data_file: DatasetFile, tiny_base: str) -> TrainingJob:
    return training_job_create(name="j", train_data=data_file, base_model=tiny_base, enqueue=False)


@pytest.mark.parametrize("who", ["lena", "alice"])
def test_leads_and_annotators_get_403(
    client_for: ClientFor, who: str, job: TrainingJob, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    client = client_for(who)
    for url in ("/api/training-jobs/", f"/api/training-jobs/{job.pk}/", "/api/model-versions/", "/api/data-files/"):
        assert client.get(url).status_code == 403, url
    response = client.post(
        "/api/training-jobs/", {"train_file": upload("t.jsonl", rm_records[:4], tmp_path)}, format="multipart"
    )
    assert response.status_code == 403
    assert client.post(f"/api/training-jobs/{job.pk}/cancel/").status_code == 403
    assert TrainingJob.objects.count() == 1 and TrainingJob.objects.get().status == "queued"


def test_anonymous_gets_401(client_for: ClientFor, db: Any) -> None:
    response = client_for(None).get("/api/training-jobs/")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Token")


def test_admin_launches_a_job_on_uploaded_files(
    client_for: ClientFor,
    tiny_base: str,
    rm_records: list[dict[str, Any]],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with (
        mock.patch("rewardmodel.tasks.training_job_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client_for("adam").post(
            "/api/training-jobs/",
            {
                "name": "api-job",
                "base_model": tiny_base,
                "train_file": upload("train.jsonl", rm_records[:20], tmp_path),
                "eval_file": upload("gold.jsonl", rm_records[20:30], tmp_path),
                "max_steps": 4,
                "batch_size": 4,
                "lr_scheduler": "linear",
            },
            format="multipart",
        )

    assert response.status_code == 202
    job = TrainingJob.objects.get()
    delay.assert_called_once_with(job_id=job.pk)
    assert response["Location"] == response.json()["status_url"]
    assert (job.name, job.config["max_steps"], job.config["lr_scheduler"]) == ("api-job", 4, "linear")
    assert job.train_data.n_records == 20 and job.eval_data is not None and job.eval_data.n_records == 10


def test_admin_launches_a_job_on_a_registered_file_by_id(
    client_for: ClientFor, tiny_base: str, data_file: DatasetFile
) -> None:
    with mock.patch("rewardmodel.tasks.training_job_run_task.delay"):
        response = client_for("adam").post(
            "/api/training-jobs/", {"base_model": tiny_base, "train_data_id": data_file.pk}, format="json"
        )
    assert response.status_code == 202
    assert TrainingJob.objects.get().train_data_id == data_file.pk


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "train_file"),
        ({"train_data_id": 99999}, "train_data_id"),
        ({"train_data_id": "DATA", "base_model": "/nowhere"}, "base_model"),
        ({"train_data_id": "DATA", "batch_size": 0}, "batch_size"),
        ({"train_data_id": "DATA", "lr_scheduler": "cosine-ish"}, "lr_scheduler"),
        ({"train_data_id": "DATA", "processes": 0}, "processes"),
        ({"train_data_id": "DATA", "processes": 65}, "processes"),
        ({"train_data_id": "DATA", "processes": "two"}, "processes"),
        ({"train_data_id": "DATA", "processes": True}, "processes"),
        ({"train_data_id": "DATA", "accelerator": "tpu"}, "accelerator"),
        ({"train_data_id": "DATA", "parallelism": "zero3"}, "parallelism"),
        ({"train_data_id": "DATA", "attn_implementation": "paged_attention"}, "attn_implementation"),
        ({"train_data_id": "DATA", "base_model": "default", "padding_free": True}, "padding_free"),
    ],
)
def test_bad_launch_input_names_the_field_and_queues_nothing(
    client_for: ClientFor, data_file: DatasetFile, tiny_base: str, payload: dict[str, Any], field: str
) -> None:
    body = {k: (data_file.pk if v == "DATA" else v) for k, v in payload.items()}
    body.setdefault("base_model", tiny_base)
    response = client_for("adam").post("/api/training-jobs/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not TrainingJob.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("processes", "0", "greater than or equal to 1"),
        ("processes", "65", "less than or equal to 64"),
        ("processes", "two", "valid integer"),
        ("accelerator", "tpu", "not a valid choice"),
        ("padding_free", "true", "packaged MiniLM backbone is a BERT encoder"),
    ],
)
def test_a_bad_process_request_with_uploads_is_a_400_that_registers_nothing(
    client_for: ClientFor, rm_records: list[dict[str, Any]], tmp_path: Path, field: str, value: str, message: str
) -> None:
    body: dict[str, Any] = {
        "base_model": "default",
        "train_file": upload("train.jsonl", rm_records[:8], tmp_path),
        "eval_file": upload("gold.jsonl", rm_records[8:12], tmp_path),
        field: value,
    }
    with mock.patch("rewardmodel.tasks.training_job_run_task.delay") as delay:
        response = client_for("adam").post("/api/training-jobs/", body, format="multipart")
    assert response.status_code == 400, response.json()
    assert list(response.json()) == [field] and message in " ".join(response.json()[field])
    assert not TrainingJob.objects.exists() and not DatasetFile.objects.exists()
    delay.assert_not_called()


def test_padding_free_and_attention_reach_the_job_config(
    client_for: ClientFor, data_file: DatasetFile, tiny_base: str
) -> None:
    with mock.patch("rewardmodel.tasks.training_job_run_task.delay"):
        response = client_for("adam").post(
            "/api/training-jobs/",
            {
                "base_model": tiny_base,
                "train_data_id": data_file.pk,
                "padding_free": True,
                "attn_implementation": "flash_attention_2",
                "processes": 2,
                "accelerator": "gpu",
            },
            format="json",
        )
    assert response.status_code == 202, response.json()
    job = TrainingJob.objects.get()
    assert job.config["padding_free"] is True and job.config["attn_implementation"] == "flash_attention_2"
    assert (job.processes, job.accelerator) == (2, "gpu")


def test_the_api_offers_the_attention_implementations_the_trainer_can_pack() -> None:
    from rewardmodel.ml.config import PADDING_FREE_ATTENTION
    from rewardmodel.presets import ATTENTION_CHOICES

    assert ATTENTION_CHOICES == PADDING_FREE_ATTENTION


def test_a_bad_upload_names_the_line_and_field(client_for: ClientFor, tiny_base: str) -> None:
    bad = SimpleUploadedFile("bad.jsonl", b'{"prompt": "x", "chosen": "a"}\n')
    response = client_for("adam").post(
        "/api/training-jobs/", {"base_model": tiny_base, "train_file": bad}, format="multipart"
    )
    assert response.status_code == 400
    [message] = response.json()["train_file"]
    assert "line 1" in message and "rejected" in message
    assert not TrainingJob.objects.exists() and not DatasetFile.objects.exists()


def test_status_carries_progress_and_the_curve(client_for: ClientFor, job: TrainingJob) -> None:
    curve = [{"step": 1, "loss": 0.69, "accuracy": 0.5}, {"step": 2, "loss": 0.6, "eval_accuracy": 0.75}]
    TrainingJob.objects.filter(pk=job.pk).update(
        status="running", step=2, total_steps=4, progress=0.5, curve=curve, log="a\nb\nstep 2/4 loss=0.6"
    )

    body = client_for("adam").get(f"/api/training-jobs/{job.pk}/").json()

    assert (body["status"], body["progress"], body["step"], body["total_steps"]) == ("running", 0.5, 2, 4)
    assert body["curve"] == curve and body["log_tail"].endswith("step 2/4 loss=0.6")
    assert body["train_data"]["n_records"] == 12 and body["model_version_id"] is None
    listed = client_for("adam").get("/api/training-jobs/").json()["results"]
    assert [j["id"] for j in listed] == [job.pk]


def test_cancel_a_queued_job_then_a_second_cancel_conflicts(client_for: ClientFor, job: TrainingJob) -> None:
    adam = client_for("adam")
    response = adam.post(f"/api/training-jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = adam.post(f"/api/training-jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]
    assert adam.post("/api/training-jobs/99999/cancel/").status_code == 404


def test_a_running_job_is_asked_to_stop_and_a_cancelled_one_resumes(client_for: ClientFor, job: TrainingJob) -> None:
    adam = client_for("adam")
    TrainingJob.objects.filter(pk=job.pk).update(status="running")
    body = adam.post(f"/api/training-jobs/{job.pk}/cancel/").json()
    assert body["status"] == "running" and body["cancel_requested"] is True

    TrainingJob.objects.filter(pk=job.pk).update(status="cancelled")
    with mock.patch("rewardmodel.tasks.training_job_run_task.delay"):
        resumed = adam.post(f"/api/training-jobs/{job.pk}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert adam.post(f"/api/training-jobs/{job.pk}/resume/").status_code == 409


@pytest.fixture
def version(tmp_path: Path) -> ModelVersion:
    return ModelVersion.objects.create(name="rm-1", scope="project:1", base_model="tiny", path=str(tmp_path))


def test_evaluation_launch_and_results(
    client_for: ClientFor,
    version: ModelVersion,
    rm_records: list[dict[str, Any]],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    adam = client_for("adam")
    records = [{**r, "subset": "chat" if i % 2 else "safety"} for i, r in enumerate(rm_records[:8])]
    with (
        mock.patch("rewardmodel.tasks.evaluation_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = adam.post(
            f"/api/model-versions/{version.pk}/evaluations/",
            {"file": upload("bench.jsonl", records, tmp_path)},
            format="multipart",
        )
    assert response.status_code == 202
    run = EvaluationRun.objects.get()
    delay.assert_called_once_with(run_id=run.pk)
    assert response.json()["status"] == "queued" and run.data.n_records == 8

    metrics = {"accuracy": 0.75, "n": 8, "per_subset": {"chat": {"accuracy": 1.0, "n": 4}}}
    EvaluationRun.objects.filter(pk=run.pk).update(status="done", metrics=metrics)
    body = adam.get(response["Location"]).json()
    assert body["status"] == "done" and body["metrics"] == metrics
    assert [r["id"] for r in adam.get(f"/api/model-versions/{version.pk}/evaluations/").json()["results"]] == [run.pk]


def test_evaluation_needs_exactly_one_data_source(
    client_for: ClientFor,
    version: ModelVersion,
    data_file: DatasetFile,
    rm_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    adam = client_for("adam")
    url = f"/api/model-versions/{version.pk}/evaluations/"
    assert "file" in adam.post(url, {}, format="json").json()
    both = adam.post(url, {"data_id": data_file.pk, "file": upload("b.jsonl", rm_records[:2], tmp_path)})
    assert both.status_code == 400 and "file" in both.json()
    assert "data_id" in adam.post(url, {"data_id": 99999}, format="json").json()
    assert not EvaluationRun.objects.exists()
    assert client_for("lena").post(url, {"data_id": data_file.pk}, format="json").status_code == 403


def test_promote_and_list_model_versions(client_for: ClientFor, version: ModelVersion) -> None:
    adam = client_for("adam")
    response = adam.post(f"/api/model-versions/{version.pk}/promote/", {"role": "current_best"}, format="json")
    assert response.status_code == 200 and response.json()["is_current_best"] is True
    bad = adam.post(f"/api/model-versions/{version.pk}/promote/", {"role": "king"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()
    assert [v["name"] for v in adam.get("/api/model-versions/").json()["results"]] == ["rm-1"]


def test_data_file_upload_and_list(client_for: ClientFor, rm_records: list[dict[str, Any]], tmp_path: Path) -> None:
    adam = client_for("adam")
    response = adam.post("/api/data-files/", {"file": upload("x.jsonl", rm_records[:3], tmp_path)}, format="multipart")
    assert response.status_code == 201 and response.json()["n_records"] == 3
    assert [f["name"] for f in adam.get("/api/data-files/").json()["results"]] == ["x.jsonl"]
    bad = adam.post("/api/data-files/", {"file": SimpleUploadedFile("e.jsonl", b"not json\n")}, format="multipart")
    assert bad.status_code == 400 and "line 1" in bad.json()["file"][0]


def test_interactive_docs_are_served_without_a_cdn(client: Any, db: Any) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "/api/schema/" in html
    redoc = client.get("/api/redoc/").content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in redoc


def test_schema_lists_curation_and_reward_model_endpoints(client: Any, db: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = set(schema["paths"])
    for expected in (
        "/api/projects/{project_id}/agreement/",
        "/api/projects/{project_id}/disputes/{dispute_id}/resolve/",
        "/api/projects/{project_id}/verified-pairs/",
        "/api/projects/{project_id}/dataset-versions/{version_id}/download/",
        "/api/projects/{project_id}/dataset-versions/{version_id}/train/",
        "/api/projects/{project_id}/rounds/{round_id}/",
        "/api/training-jobs/{job_id}/cancel/",
        "/api/model-versions/{version_id}/evaluations/",
        "/api/evaluations/{run_id}/",
    ):
        assert expected in paths, expected
