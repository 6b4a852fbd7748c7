"""Celery tasks of the LLM judges: one per shard, through the shared job lifecycle (curation/judges/jobs.py)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="curation.judges.tasks.judge_shard_run", acks_late=True)
def judge_shard_run_task(*, shard_id: int) -> None:
    """Work one judge shard; claimed by compare-and-set, so a duplicate or redelivered message does nothing.

    No autoretry: the shard records its own failure (resumable), and the lifecycle's reaper
    requeues it if this worker dies.
    """
    from curation.judges.services import judge_shard_run

    shard = judge_shard_run(shard_id=shard_id)
    logger.info("judge shard %s: %s", shard_id, shard.status if shard else "not claimable")
