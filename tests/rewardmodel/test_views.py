from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from rewardmodel.models import DatasetFile, EvaluationRun, ModelVersion, TrainingJob
from rewardmodel.services import dataset_file_register, training_job_create
from tests.conftest import PASSWORD
from tests.rewardmodel.conftest import jsonl


@pytest.fixture
def admin_client(client: Any, users: dict[str, Any]) -> Any:
    client.login(username="adam", password=PASSWORD)
    return client


def _jsonl_upload(name: str, records: list[dict[str, Any]], tmp_path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, jsonl(tmp_path / name, records).read_bytes())


@pytest.mark.parametrize("who", ["alice", "lena"])
def test_only_admins_reach_model_pages(client: Any, users: dict[str, Any], who: str) -> None:
    client.login(username=who, password=PASSWORD)
    for name in ("rewardmodel:index", "rewardmodel:job-create"):
        assert client.get(reverse(name)).status_code == 403
    assert client.post(reverse("rewardmodel:job-create"), {}).status_code == 403


def test_anonymous_is_sent_to_login(client: Any, db: Any) -> None:
    response = client.get(reverse("rewardmodel:index"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_launch_job_from_upload_enqueues_on_commit(
    admin_client: Any,
    tiny_base: str,
    rm_records: list[dict[str, Any]],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with (
        mock.patch("rewardmodel.tasks.training_job_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = admin_client.post(
            reverse("rewardmodel:job-create"),
            {
                "name": "first",
                "base_model": tiny_base,
                "train_upload": _jsonl_upload("train.jsonl", rm_records[:20], tmp_path),
                "eval_upload": _jsonl_upload("gold.jsonl", rm_records[20:30], tmp_path),
                "learning_rate": "0.0001",
                "lr_scheduler": "linear",
                "warmup_ratio": "0.1",
                "num_epochs": "1",
                "max_steps": "4",
                "batch_size": "4",
                "gradient_accumulation_steps": "1",
                "max_length": "64",
                "eval_every": "2",
                "save_every": "2",
            },
        )
    job = TrainingJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("rewardmodel:job-detail", args=[job.pk])
    delay.assert_called_once_with(job_id=job.pk)
    assert job.config["lr_scheduler"] == "linear" and job.config["max_steps"] == 4
    assert job.train_data.n_records == 20 and job.eval_data.n_records == 10


def test_bad_upload_is_reported_and_nothing_is_queued(admin_client: Any, tiny_base: str, tmp_path: Path) -> None:
    bad = SimpleUploadedFile("bad.jsonl", b'{"prompt": "x", "chosen": "a"}\n')
    response = admin_client.post(
        reverse("rewardmodel:job-create"),
        {
            "name": "x",
            "base_model": tiny_base,
            "train_upload": bad,
            "learning_rate": "1e-4",
            "lr_scheduler": "constant",
            "warmup_ratio": "0",
            "num_epochs": "1",
            "max_steps": "0",
            "batch_size": "8",
            "gradient_accumulation_steps": "1",
            "max_length": "128",
            "eval_every": "0",
            "save_every": "0",
        },
    )
    assert response.status_code == 200
    assert "bad.jsonl: line 1, field &#x27;rejected&#x27;: is missing" in response.content.decode()
    assert TrainingJob.objects.count() == 0 and DatasetFile.objects.count() == 0


def test_status_fragment_polls_until_the_job_finishes(
    admin_client: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    data = dataset_file_register(path=jsonl(tmp_path / "t.jsonl", rm_records[:8]), name="t")
    job = training_job_create(name="j", train_data=data, base_model=tiny_base, enqueue=False)
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.RUNNING,
        step=3,
        total_steps=10,
        progress=0.3,
        curve=[{"step": 1, "loss": 0.7, "accuracy": 0.5}, {"step": 3, "loss": 0.5, "accuracy": 0.75}],
    )
    url = reverse("rewardmodel:job-detail", args=[job.pk])
    running = admin_client.get(url, HTTP_HX_REQUEST="true")
    body = running.content.decode()
    assert (
        running.status_code == 200
        and 'hx-trigger="every 2s"' in body
        and "<polyline" in body
        and 'aria-valuenow="30"' in body
    )
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.SUCCEEDED, progress=1.0)
    done = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx's "stop polling"
    assert "every 2s" not in done.content.decode()
    page = admin_client.get(url)
    assert "<html" in page.content.decode() and page.status_code == 200


def test_cancel_and_promote_from_pages(
    admin_client: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    data = dataset_file_register(path=jsonl(tmp_path / "t.jsonl", rm_records[:8]), name="t")
    job = training_job_create(name="j", train_data=data, base_model=tiny_base, enqueue=False)
    admin_client.post(reverse("rewardmodel:job-cancel", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.CANCELLED
    version = ModelVersion.objects.create(name="v", scope="project:1", base_model="x", path=str(tmp_path))
    admin_client.post(reverse("rewardmodel:version-promote", args=[version.pk]), {"role": "current_best"})
    version.refresh_from_db()
    assert version.is_current_best and not version.is_gold


def test_evaluate_upload_creates_a_run_and_shows_the_subset_table(
    admin_client: Any,
    tiny_model_dir: Path,
    rm_records: list[dict[str, Any]],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from rewardmodel.services import evaluation_run

    version = ModelVersion.objects.create(name="v", base_model="tiny", path=str(tiny_model_dir))
    with mock.patch("rewardmodel.tasks.evaluation_run_task.delay"), django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("rewardmodel:version-detail", args=[version.pk]),
            {"upload": _jsonl_upload("bench.jsonl", rm_records[:10], tmp_path)},
        )
    run = EvaluationRun.objects.get()
    assert response["Location"] == reverse("rewardmodel:evaluation-detail", args=[run.pk])
    evaluation_run(run_id=run.pk)
    page = admin_client.get(response["Location"]).content.decode()
    assert "<td>alpha</td>" in page and "<td>beta</td>" in page
