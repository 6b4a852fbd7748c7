"""Curation tasks (default queue). Arguments are ids and strings; every body calls one service.

All of them are idempotent (compare-and-set counters, unique constraints), so a database hiccup
is retried a few times; other errors are not retried.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError

logger = logging.getLogger(__name__)

RETRY = {"autoretry_for": (OperationalError,), "max_retries": 3, "retry_backoff": True}


@shared_task(name="curation.tasks.pair_completed", **RETRY)
def pair_completed_task(*, pair_id: int) -> None:
    """A pair has all its labels: apply the dispute rule and request its batch's gate."""
    from curation.agreement_refresh import pair_completed_handle

    outcome = pair_completed_handle(pair_id=pair_id)
    logger.info("pair %s completed: %s", pair_id, outcome)


@shared_task(name="curation.tasks.agreement_request", **RETRY)
def agreement_request_task(*, pair_id: int) -> None:
    """A label arrived on ``pair_id``: request a (debounced) recomputation of its batch and project."""
    from curation.agreement_refresh import agreement_request_for_pair

    agreement_request_for_pair(pair_id=pair_id)


@shared_task(name="curation.tasks.batch_refresh", **RETRY)
def batch_refresh_task(*, project_id: int, batch_key: str) -> None:
    """Recompute a batch's agreement and apply its gate (returns at once when nothing is new)."""
    from curation.agreement_refresh import batch_refresh

    gate = batch_refresh(project_id=project_id, batch_key=batch_key)
    if gate is not None:
        logger.info("batch %s of project %s: alpha %s, gate %s", batch_key, project_id, gate.alpha, gate.status)


@shared_task(name="curation.tasks.project_refresh", **RETRY)
def project_refresh_task(*, project_id: int) -> None:
    """Recompute the project-wide and per-annotator agreement (returns at once when nothing is new)."""
    from curation.agreement_refresh import project_refresh

    project_refresh(project_id=project_id)


@shared_task(name="curation.tasks.retest_record", **RETRY)
def retest_record_task(*, annotation_id: int) -> None:
    """Compare a submitted retest label with the pair's verified label."""
    from curation.retests import retest_record

    retest_record(annotation_id=annotation_id)


@shared_task(name="curation.tasks.agreement_sweep")
def agreement_sweep_task() -> int:
    """Re-enqueue refreshes that were requested but never computed (run by beat)."""
    from curation.agreement_refresh import agreement_sweep

    return agreement_sweep()


# Routed to the gpu queue (settings.CELERY_TASK_ROUTES): a round trains, scores and embeds.
@shared_task(name="curation.tasks.curation_round_run", acks_late=True, reject_on_worker_lost=True)
def curation_round_run_task(*, round_id: int) -> None:
    """Run or resume a curation round; the round row carries each step's status and the metrics."""
    from curation.rounds import round_run

    done = round_run(round_id=round_id)
    if done is not None:
        logger.info("curation round %s: %s", round_id, done.status)


# Routed to the gpu queue (settings.CELERY_TASK_ROUTES): it runs the encoder. Acked late and
# resumable: the embeddings already stored are skipped, so a redelivered message only finishes the work.
@shared_task(name="curation.tasks.pool_embed", acks_late=True, reject_on_worker_lost=True)
def pool_embed_task(*, project_id: int, batch_size: int | None = None) -> None:
    """Embed a project's retrieval pool ahead of its rounds (stored once per pair and encoder)."""
    from annotation.models import Project
    from curation.embeddings import pool_embed

    if not Project.objects.filter(pk=project_id).exists():
        logger.warning("pool_embed: project %s does not exist", project_id)
        return
    done = pool_embed(project_id=project_id, batch_size=batch_size)
    logger.info("project %s pool: %d embedded, %d reused", project_id, done.embedded, done.reused)


# Stage 2: one task per shard (routed to the gpu queue: it scores), acked late so a message whose
# worker died is delivered again; the claim in config/jobs.py makes a second delivery a no-op.
@shared_task(name="curation.tasks.stage2_shard_run", acks_late=True, reject_on_worker_lost=True)
def stage2_shard_run_task(*, shard_id: int) -> None:
    """Claim and work one stage-2 shard (curation.stage2.engine)."""
    from curation.stage2.engine import stage2_shard_run

    status = stage2_shard_run(shard_id=shard_id)
    logger.info("stage-2 shard %s: %s", shard_id, status or "not claimable")


@shared_task(name="curation.tasks.stage2_finalise_all")
def stage2_finalise_all_task() -> int:
    """Beat: close stage-2 runs whose shards have all finished (no chords)."""
    from curation.stage2.engine import stage2_finalise_all

    return stage2_finalise_all()
