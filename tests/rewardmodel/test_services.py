from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from rewardmodel.models import EvaluationRun, ModelVersion, TrainingJob
from rewardmodel.services import (
    dataset_file_register,
    evaluation_run,
    model_version_promote,
    training_job_cancel,
    training_job_create,
    training_job_reap_stale,
    training_job_resume,
    training_job_run,
)
from tests.rewardmodel.conftest import jsonl

TINY_CONFIG = {
    "max_steps": 6,
    "batch_size": 4,
    "learning_rate": 5e-4,
    "max_length": 64,
    "eval_every": 3,
    "save_every": 2,
}


@pytest.fixture
def datasets(db: Any, tmp_path: Path, rm_records: list[dict[str, Any]]) -> tuple[Any, Any]:
    train = dataset_file_register(path=jsonl(tmp_path / "train.jsonl", rm_records[:36]), name="train")
    gold = dataset_file_register(path=jsonl(tmp_path / "gold.jsonl", rm_records[36:]), name="gold")
    return train, gold


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "line 2: invalid JSON"),
        ('{"prompt": "x", "chosen": "a"}', "line 2, field 'rejected': is missing"),
        ('{"prompt": "x", "chosen": "", "rejected": "b"}', "line 2, field 'chosen': must be a non-empty string"),
        ('{"prompt": "x", "chosen": "a", "rejected": "b", "subset": 3}', "line 2, field 'subset'"),
    ],
)
def test_dataset_errors_name_file_line_and_field(db: Any, tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "x", "chosen": "a", "rejected": "b"}\n' + line + "\n")
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        dataset_file_register(path=path, name="d.jsonl")


def test_dataset_is_copied_and_hashed(db: Any, tmp_path: Path, rm_records: list[dict[str, Any]]) -> None:
    source = jsonl(tmp_path / "x.jsonl", rm_records[:5])
    dataset = dataset_file_register(path=source, name="x")
    source.write_text("changed later\n")
    assert dataset.n_records == 5 and len(json.loads(Path(dataset.path).read_text().splitlines()[0])) >= 3


def test_unknown_base_model_and_bad_config_are_refused(datasets: tuple[Any, Any], tiny_base: str) -> None:
    train, _gold = datasets
    with pytest.raises(ValidationError, match="base_model"):
        training_job_create(name="x", train_data=train, base_model="/somewhere/else", enqueue=False)
    with pytest.raises(ValidationError) as info:
        training_job_create(
            name="x", train_data=train, base_model=tiny_base, config={"learning_rate": -1}, enqueue=False
        )
    assert "learning_rate" in info.value.message_dict
    assert TrainingJob.objects.count() == 0


def test_training_job_trains_and_registers_the_best_checkpoint(datasets: tuple[Any, Any], tiny_base: str) -> None:
    train, gold = datasets
    job = training_job_create(
        name="rm", train_data=train, eval_data=gold, base_model=tiny_base, config=TINY_CONFIG, enqueue=False
    )
    done = training_job_run(job_id=job.pk)
    assert done is not None and done.status == TrainingJob.Status.SUCCEEDED, done.error
    assert (done.step, done.total_steps, done.progress) == (6, 6, 1.0)
    steps = [p["step"] for p in done.curve]
    assert steps == sorted(steps) and steps[-1] == 6 and all("loss" in p for p in done.curve)
    assert any("eval_accuracy" in p for p in done.curve)
    version = done.model_version
    assert version is not None and Path(version.path, "config.json").exists()
    assert version.data_sha256 == train.sha256 and version.eval_accuracy is not None
    assert "registered model version" in done.log
    assert training_job_run(job_id=job.pk) is None  # a redelivered task does nothing


def test_cancel_then_resume_continues_from_the_checkpoint(datasets: tuple[Any, Any], tiny_base: str) -> None:
    train, gold = datasets
    job = training_job_create(name="rm", train_data=train, base_model=tiny_base, config=TINY_CONFIG, enqueue=False)
    TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True, status=TrainingJob.Status.QUEUED)
    cancelled = training_job_run(job_id=job.pk)
    assert cancelled.status == TrainingJob.Status.CANCELLED and cancelled.resumable and cancelled.step == 1
    resumed = training_job_resume(job=cancelled)
    assert resumed.status == TrainingJob.Status.QUEUED
    done = training_job_run(job_id=job.pk)
    assert done.status == TrainingJob.Status.SUCCEEDED and done.step == 6 and done.attempts == 2
    assert "resuming" in done.log


def test_cancel_queued_job_and_refuse_finished(datasets: tuple[Any, Any], tiny_base: str) -> None:
    train, _gold = datasets
    job = training_job_create(name="rm", train_data=train, base_model=tiny_base, enqueue=False)
    assert training_job_cancel(job=job).status == TrainingJob.Status.CANCELLED
    with pytest.raises(ValidationError, match="only queued or running"):
        training_job_cancel(job=job)


def test_a_job_whose_worker_died_is_marked_failed_and_resumable(datasets: tuple[Any, Any], tiny_base: str) -> None:
    train, _gold = datasets
    job = training_job_create(name="rm", train_data=train, base_model=tiny_base, enqueue=False)
    TrainingJob.objects.filter(pk=job.pk).update(
        status=TrainingJob.Status.RUNNING, heartbeat_at=timezone.now() - timezone.timedelta(hours=1)
    )
    fresh = training_job_create(name="alive", train_data=train, base_model=tiny_base, enqueue=False)
    TrainingJob.objects.filter(pk=fresh.pk).update(status=TrainingJob.Status.RUNNING, heartbeat_at=timezone.now())
    assert training_job_reap_stale(stale_after_s=600) == 1
    job.refresh_from_db()
    fresh.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED and job.resumable and "worker lost" in job.error
    assert fresh.status == TrainingJob.Status.RUNNING


def test_promotion_keeps_one_gold_per_scope(db: Any, tmp_path: Path) -> None:
    first = ModelVersion.objects.create(name="a", scope="project:1", base_model="x", path=str(tmp_path))
    second = ModelVersion.objects.create(name="b", scope="project:1", base_model="x", path=str(tmp_path))
    other = ModelVersion.objects.create(name="c", scope="project:2", base_model="x", path=str(tmp_path))
    for version in (first, second, other):
        model_version_promote(version=version, role="gold")
    assert set(ModelVersion.objects.filter(is_gold=True).values_list("name", flat=True)) == {"b", "c"}
    model_version_promote(version=first, role="current_best")
    assert ModelVersion.objects.get(name="a").is_current_best
    with pytest.raises(ValidationError, match="unknown role"):
        model_version_promote(version=first, role="king")


def test_evaluation_reports_accuracy_per_subset(datasets: tuple[Any, Any], tiny_model_dir: Path) -> None:
    _train, gold = datasets
    version = ModelVersion.objects.create(name="tiny", base_model="tiny", path=str(tiny_model_dir))
    run = EvaluationRun.objects.create(model_version=version, data=gold)
    done = evaluation_run(run_id=run.pk)
    assert done.status == EvaluationRun.Status.DONE, done.error
    assert 0.0 <= done.metrics["accuracy"] <= 1.0 and done.metrics["n"] == 12
    assert set(done.metrics["per_subset"]) == {"alpha", "beta"}


def test_each_job_gets_a_fresh_output_directory(datasets: tuple[Any, Any], tiny_base: str, settings: Any) -> None:
    """A reset database reuses job ids; a new job must never resume an old job's checkpoints."""
    train, _gold = datasets
    first = training_job_create(name="a", train_data=train, base_model=tiny_base, enqueue=False)
    TrainingJob.objects.all().delete()
    second = training_job_create(name="b", train_data=train, base_model=tiny_base, enqueue=False)
    assert first.output_dir != second.output_dir
    assert (
        Path(second.output_dir).parent == Path(settings.MODEL_STORE_DIR) / "jobs"
        and not Path(second.output_dir).exists()
    )
