"""Judge shards walk the shared lifecycle (config/jobs.py).

A shard keeps every outcome it wrote, so a worker that died mid-shard is re-run up to three times
and continues with the pairs it had not finished; cached answers cost nothing the second time.
"""

from __future__ import annotations

from config.jobs import JobKind, register

SHARD = register(
    JobKind(
        key="judge shard",
        model="judges.JudgeShard",
        task="curation.judges.tasks.judge_shard_run_task",
        kwarg="shard_id",
        max_attempts=3,
        retry_advice="resume the run; finished pairs and cached answers are kept.",
    )
)
