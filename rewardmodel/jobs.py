"""The reward-model app's background rows and how they walk the shared lifecycle (config/jobs.py)."""

from __future__ import annotations

from django.conf import settings

from config.jobs import JobKind, register

# A training run resumes from its last checkpoint, but only when an admin says so: a dead worker
# ends the job failed and resumable (a GPU job may have died of the GPU itself). Queued jobs wait
# behind each other on the single GPU worker, so they never expire; they are re-sent instead.
TRAINING = register(
    JobKind(
        key="training job",
        model="rewardmodel.TrainingJob",
        task="rewardmodel.tasks.training_job_run_task",
        kwarg="job_id",
        failed="failed",
        max_attempts=1,
        stale_after_s=lambda: int(settings.RM_HEARTBEAT_TIMEOUT_S),
        queued_timeout_s=lambda: None,
        retry_advice="resume it to continue from the last checkpoint.",
        fail_fields=lambda message: {"error": message, "resumable": True},
    )
)

EVALUATION = register(
    JobKind(
        key="evaluation",
        model="rewardmodel.EvaluationRun",
        task="rewardmodel.tasks.evaluation_run_task",
        kwarg="run_id",
        max_attempts=2,
        stale_after_s=lambda: int(settings.RM_HEARTBEAT_TIMEOUT_S),
        queued_timeout_s=lambda: None,
        retry_advice="start the evaluation again.",
    )
)
