"""Training jobs that ask for N processes: the worker launches torchrun as a child process group (2 Gloo processes
on CPU here), streams rank 0's progress into the job, passes a cancel on, and refuses what it cannot hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from rewardmodel.forms import TrainingJobForm
from rewardmodel.models import TrainingJob
from rewardmodel.services import dataset_file_register, training_job_create, training_job_resume, training_job_run
from tests.rewardmodel.conftest import jsonl

CONFIG = {"max_steps": 4, "batch_size": 4, "learning_rate": 5e-4, "max_length": 64, "save_every": 2}


@pytest.fixture
def datasets(db: Any, tmp_path: Path, rm_records: list[dict[str, Any]]) -> tuple[Any, Any]:
    train = dataset_file_register(path=jsonl(tmp_path / "train.jsonl", rm_records[:36]), name="train")
    gold = dataset_file_register(path=jsonl(tmp_path / "gold.jsonl", rm_records[36:]), name="gold")
    return train, gold


def _job(datasets: tuple[Any, Any], base: str, **kw: Any) -> TrainingJob:
    train, gold = datasets
    options: dict[str, Any] = {"processes": 2, "accelerator": "cpu", "config": {**CONFIG, "parallelism": "fsdp"}}
    options.update(kw)
    return training_job_create(name="dist", train_data=train, eval_data=gold, base_model=base, enqueue=False, **options)


@pytest.mark.slow
def test_two_cpu_processes_cancel_then_resume_to_a_registered_model(datasets: tuple[Any, Any], tiny_base: str) -> None:
    job = _job(datasets, tiny_base)
    TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True)  # an admin clicked cancel early

    ran = training_job_run(job_id=job.pk)
    assert ran is not None
    job = ran
    assert job.status == TrainingJob.Status.CANCELLED and job.resumable, job.log
    assert job.device == "2 x cpu" and "launching 2 cpu process(es) (torchrun, fsdp)" in job.log
    assert job.step == 1 and [p["step"] for p in job.curve] == [1]  # rank 0's step reached the row
    assert "cancelled by an admin at step 1" in job.log

    training_job_resume(job=job)
    ran = training_job_run(job_id=job.pk)
    assert ran is not None
    job = ran
    assert job.status == TrainingJob.Status.SUCCEEDED, job.log + job.error
    assert [p["step"] for p in job.curve] == [1, 2, 3, 4] and job.progress == 1.0
    assert all(p["loss"] > 0 for p in job.curve) and "eval_accuracy" in job.curve[-1]
    version = job.model_version
    assert version is not None and version.metrics["global_step"] == 4
    assert version.eval_accuracy is not None

    from rewardmodel.ml.modeling import load_reward_model

    model, _ = load_reward_model(version.path, device="cpu")  # a consolidated save_pretrained directory
    assert model.config.num_labels == 1


@pytest.mark.slow
def test_a_crashing_distributed_run_fails_the_job_with_its_error(datasets: tuple[Any, Any], tiny_base: str) -> None:
    job = _job(datasets, tiny_base)
    Path(job.train_data.path).write_text('{"prompt": "x"}\n')  # the file changed under the job: every rank fails
    ran = training_job_run(job_id=job.pk)
    assert ran is not None
    job = ran
    assert job.status == TrainingJob.Status.FAILED and job.resumable
    assert "ValueError" in job.error and "chosen" in job.error, job.error


def test_a_worker_without_enough_gpus_refuses_the_job(datasets: tuple[Any, Any], tiny_base: str) -> None:
    created = _job(datasets, tiny_base, processes=64, accelerator="gpu")
    job = training_job_run(job_id=created.pk)
    assert job is not None and job.status == TrainingJob.Status.FAILED
    assert job.error.startswith("refused by this worker: the job asks for 64 GPUs; this worker has ")
    assert job.step == 0 and job.curve == []


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"processes": 0}, "processes", "must be between 1 and 64"),
        ({"processes": 65}, "processes", "must be between 1 and 64"),
        ({"processes": "2"}, "processes", "must be a whole number"),
        ({"accelerator": "tpu"}, "accelerator", "must be one of auto, gpu, cpu"),
        ({"config": {"parallelism": "zero3"}}, "parallelism", "must be one of"),
    ],
)
def test_create_names_a_bad_process_request_and_stores_nothing(
    datasets: tuple[Any, Any], tiny_base: str, kw: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _job(datasets, tiny_base, **kw)
    assert message in " ".join(info.value.message_dict[field])
    assert not TrainingJob.objects.exists()


def test_form_passes_processes_accelerator_and_parallelism(datasets: tuple[Any, Any], tiny_base: str) -> None:
    train, _gold = datasets
    data = {"name": "x", "base_model": tiny_base, "train_data": train.pk, "preset": "cpu_quick"}
    form = TrainingJobForm({**data, "processes": 4, "accelerator": "gpu", "parallelism": "fsdp"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["processes"] == 4 and form.cleaned_data["accelerator"] == "gpu"
    assert form.config()["parallelism"] == "fsdp"
    bad = TrainingJobForm({**data, "processes": 0, "accelerator": "tpu", "parallelism": "fsdp"})
    assert not bad.is_valid() and {"processes", "accelerator"} <= set(bad.errors)


def test_form_passes_padding_free_and_refuses_it_for_the_packaged_encoder(
    datasets: tuple[Any, Any], tiny_base: str
) -> None:
    train, _gold = datasets
    data = {"name": "x", "train_data": train.pk, "preset": "gpu_standard", "padding_free": "on"}
    form = TrainingJobForm({**data, "base_model": tiny_base, "attn_implementation": "flash_attention_2"})
    assert form.is_valid(), form.errors
    assert form.config()["padding_free"] is True and form.config()["attn_implementation"] == "flash_attention_2"
    plain = TrainingJobForm({**data, "base_model": tiny_base})
    assert plain.is_valid() and "attn_implementation" not in plain.config()  # the transformers default
    bad = TrainingJobForm({**data, "base_model": "default"})
    assert not bad.is_valid()
    assert "packaged MiniLM backbone is a BERT encoder" in " ".join(bad.errors["padding_free"])
