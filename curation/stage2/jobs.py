"""Stage-2 shards walk the shared lifecycle (config/jobs.py); imported by ``curation.jobs``.

A shard whose worker died is requeued by the maintenance pass and re-claimed (its results are
upserts, so the retry neither loses nor double-counts a pair); after ``STAGE2_SHARD_ATTEMPTS`` runs
it ends failed and the run's page offers resume.
"""

from __future__ import annotations

from django.conf import settings

from config.jobs import JobKind, register

SHARD = register(
    JobKind(
        key="stage-2 shard",
        model="curation.Stage2Shard",
        task="curation.tasks.stage2_shard_run_task",
        kwarg="shard_id",
        max_attempts=int(getattr(settings, "STAGE2_SHARD_ATTEMPTS", 3)),
        stale_after_s=lambda: int(getattr(settings, "STAGE2_STALE_AFTER_S", settings.JOBS_STALE_AFTER_S)),
        queued_timeout_s=lambda: None,  # a big run queues many shards behind each other: they wait
        retry_advice="resume the run; finished shards are kept.",
    )
)
