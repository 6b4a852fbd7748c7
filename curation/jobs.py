"""The curation app's background rows and how they walk the shared lifecycle (config/jobs.py)."""

from __future__ import annotations

from django.conf import settings

from config.jobs import JobKind, register

# A round keeps its finished steps; a dead worker ends it failed, and "resume" reruns the step
# that was cut short. Rounds share the GPU worker with training jobs, so queued ones never expire.
ROUND = register(
    JobKind(
        key="curation round",
        model="curation.CurationRound",
        task="curation.tasks.curation_round_run_task",
        kwarg="round_id",
        max_attempts=1,
        stale_after_s=lambda: int(settings.RM_HEARTBEAT_TIMEOUT_S),
        queued_timeout_s=lambda: None,
        retry_advice="resume the round; its finished steps are kept.",
    )
)

# Stage-2 shards (declared next to their engine).
from curation.stage2.jobs import SHARD as STAGE2_SHARD  # noqa: E402, F401
