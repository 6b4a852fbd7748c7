"""The Models form's presets, the flash that says where a job runs, and bf16 as applied on the job page."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from rewardmodel.models import DatasetFile, TrainingJob
from rewardmodel.presets import PRESETS, effective_bf16, where_it_runs
from rewardmodel.services import dataset_file_register, training_job_create
from tests.conftest import PASSWORD
from tests.rewardmodel.conftest import jsonl


@pytest.fixture
def admin_client(client: Any, users: dict[str, Any]) -> Any:
    client.login(username="adam", password=PASSWORD)
    return client


def _post(admin_client: Any, base: str, records: list[dict[str, Any]], tmp_path: Path, **fields: Any) -> Any:
    upload = SimpleUploadedFile("train.jsonl", jsonl(tmp_path / "train.jsonl", records).read_bytes())
    with mock.patch("rewardmodel.tasks.training_job_run_task.delay"):
        return admin_client.post(
            reverse("rewardmodel:job-create"),
            {"name": "p", "base_model": base, "train_upload": upload, **fields},
            follow=True,
        )


@pytest.mark.parametrize("preset", ["cpu_quick", "gpu_standard"])
def test_a_preset_sets_every_hyperparameter_without_raw_fields(
    admin_client: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path, preset: str
) -> None:
    response = _post(admin_client, tiny_base, rm_records[:10], tmp_path, preset=preset)
    job = TrainingJob.objects.get()
    assert response.status_code == 200
    for key, value in PRESETS[preset].items():
        assert job.config[key] == value, key
    assert job.config["bf16"] is (preset == "gpu_standard")


def test_custom_uses_the_raw_fields_and_reports_bad_ones(
    admin_client: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    raw = {"learning_rate": "0.001", "lr_scheduler": "linear", "warmup_ratio": "0", "num_epochs": "2", "max_steps": "7"}
    raw |= {"batch_size": "4", "gradient_accumulation_steps": "1", "max_length": "64", "eval_every": "0"}
    raw |= {"save_every": "0"}
    _post(admin_client, tiny_base, rm_records[:10], tmp_path, preset="custom", **raw)
    job = TrainingJob.objects.get()
    assert job.config["max_steps"] == 7 and job.config["learning_rate"] == 0.001

    response = _post(admin_client, tiny_base, rm_records[:10], tmp_path, preset="custom", **{**raw, "batch_size": "0"})
    assert TrainingJob.objects.count() == 1 and "batch_size" in response.content.decode()


def test_the_flash_says_where_the_job_runs(
    admin_client: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    first = _post(admin_client, tiny_base, rm_records[:10], tmp_path, preset="cpu_quick").content.decode()
    assert "GPU worker" not in first and "else on its CPU" in first
    TrainingJob.objects.update(device="cpu")
    second = _post(admin_client, tiny_base, rm_records[:10], tmp_path, preset="cpu_quick").content.decode()
    assert "last trained on CPU (cpu)" in second and "GPU" not in second.split("last trained on")[1][:10]
    assert "GPU (cuda:0)" in where_it_runs("cuda:0")


def test_bf16_shows_as_applied(
    admin_client: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    data: DatasetFile = dataset_file_register(path=jsonl(tmp_path / "d.jsonl", rm_records[:10]), name="d")
    job = training_job_create(name="j", train_data=data, base_model=tiny_base, config={"bf16": True}, enqueue=False)
    url = reverse("rewardmodel:job-detail", args=[job.pk])
    assert '<td class="mono" id="config-bf16">True</td>' in admin_client.get(url).content.decode()  # not started
    TrainingJob.objects.filter(pk=job.pk).update(device="cpu")
    assert "False (requested True; CUDA only)" in admin_client.get(url).content.decode()
    TrainingJob.objects.filter(pk=job.pk).update(device="cuda:0")
    assert '<td class="mono" id="config-bf16">True</td>' in admin_client.get(url).content.decode()
    assert effective_bf16({"bf16": False}, "cuda:0") is False and effective_bf16({"bf16": True}, "") is None
