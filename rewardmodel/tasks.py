"""Reward-model tasks. ``rewardmodel.tasks.*`` is routed to the ``gpu`` queue (concurrency 1)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


# acks_late + reject_on_worker_lost: a worker killed mid-job gives the message back; the
# compare-and-set claim in the service makes the redelivery harmless, and the reaper marks
# the abandoned row failed-and-resumable.
@shared_task(name="rewardmodel.tasks.training_job_run", acks_late=True, reject_on_worker_lost=True)
def training_job_run_task(*, job_id: int) -> None:
    """Train a reward model for a queued TrainingJob; the row carries status, curve and log."""
    from rewardmodel.services import training_job_run

    job = training_job_run(job_id=job_id)
    if job is not None:
        logger.info("training job %s finished: %s", job_id, job.status)


@shared_task(name="rewardmodel.tasks.evaluation_run", acks_late=True, reject_on_worker_lost=True)
def evaluation_run_task(*, run_id: int) -> None:
    """Evaluate a model version on a RewardBench-format file."""
    from rewardmodel.services import evaluation_run

    evaluation_run(run_id=run_id)


# Runs on the default queue: it only touches rows, and must run even while the GPU worker is busy or dead.
# Beat runs config.jobs.maintain (every kind, training included); this name is kept for old schedules.
@shared_task(name="rewardmodel_maintenance.training_job_reap_stale")
def training_job_reap_stale_task() -> int:
    """Fail (resumable) the training jobs whose worker stopped beating."""
    from rewardmodel.services import training_job_reap_stale

    return training_job_reap_stale()
