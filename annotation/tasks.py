from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


# acks_late + reject_on_worker_lost: a worker killed mid-import gives the message back; the claim
# (config/jobs.py) takes the row over once its heartbeat is stale, and the import is one
# transaction, so the rerun starts clean. Without a redelivery the jobs maintenance requeues it.
@shared_task(name="annotation.tasks.import_batch_run", acks_late=True, reject_on_worker_lost=True)
def import_batch_run_task(*, batch_id: int) -> None:
    """Import an uploaded file; the batch row carries status, counts and errors."""
    from annotation.services import import_batch_run

    batch = import_batch_run(batch_id=batch_id)
    if batch is not None:
        logger.info("import batch %s: %s, %s pairs", batch_id, batch.status, batch.n_imported)


@shared_task(name="annotation.tasks.assignment_expire_stale")
def assignment_expire_stale_task() -> int:
    """Return expired claims to the pool (run every minute by beat; also done lazily)."""
    from annotation.services import assignment_expire_stale

    return assignment_expire_stale()


# The annotator tools' tasks (code runs, AI questions, corpus loads) are in annotation/tools/tasks.py.
