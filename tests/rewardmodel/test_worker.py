"""A training job runs end to end on a real Celery worker consuming the gpu queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rewardmodel.models import TrainingJob
from rewardmodel.services import dataset_file_register, training_job_create
from tests.conftest import wait_for
from tests.rewardmodel.conftest import jsonl

pytestmark = [pytest.mark.worker]


def test_training_job_runs_on_the_gpu_queue_worker(
    celery_worker: Any, tiny_base: str, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    train = dataset_file_register(path=jsonl(tmp_path / "t.jsonl", rm_records[:24]), name="t")
    gold = dataset_file_register(path=jsonl(tmp_path / "g.jsonl", rm_records[24:36]), name="g")
    job = training_job_create(
        name="worker",
        train_data=train,
        eval_data=gold,
        base_model=tiny_base,
        config={"max_steps": 4, "batch_size": 4, "max_length": 64, "eval_every": 2},
    )
    done = wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status__in=TrainingJob.FINISHED).first(), timeout=300)
    assert done.status == TrainingJob.Status.SUCCEEDED, done.error
    assert done.model_version is not None and done.step == 4 and done.device == "cpu"
