from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_ready

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


# --- annotator tools (annotation/tools/) -------------------------------------------------------------
# Code runs are routed to the "sandbox" queue by CELERY_TASK_ROUTES ("annotation.tasks.code_run*").


# acks_late: a redelivered message is harmless (the claim never re-runs code whose worker died);
# the jobs maintenance ends such a run failed with a message.
@shared_task(name="annotation.tasks.code_run_execute", time_limit=600, soft_time_limit=570, acks_late=True)
def code_run_execute_task(*, run_id: int) -> None:
    """Run queued code in the sandbox; the CodeRun row carries status, output and the limit hit."""
    from annotation.tools.services import code_run_execute

    run = code_run_execute(run_id=run_id)
    if run is not None:
        logger.info("code run %s: %s (limit hit: %s)", run_id, run.status, run.limit_hit or "none")


@shared_task(name="annotation.tasks.ai_query_run", time_limit=600, soft_time_limit=570, acks_late=True)
def ai_query_run_task(*, query_id: int) -> None:
    """Ask the judge LLM an annotator's question; the AIQuery row carries the answer or the error."""
    from annotation.tools.services import ai_query_run

    query = ai_query_run(query_id=query_id)
    if query is not None:
        logger.info("AI query %s: %s", query_id, query.status)


@shared_task(name="annotation.tasks.corpus_load_file", acks_late=True)
def corpus_load_file_task(*, corpus_id: int, path: str | None = None) -> None:
    """Load an uploaded reference corpus; the Corpus row carries status, count and error."""
    from annotation.tools.services import corpus_load_file

    corpus = corpus_load_file(corpus_id=corpus_id, path=path)
    if corpus is not None:
        logger.info("corpus %s: %s, %s documents", corpus_id, corpus.status, corpus.n_documents)


# --- sandbox cgroups left by a worker that died (kill -9) -------------------------------------------------


@shared_task(name="annotation.tasks.code_run_cgroups_cleanup")
def code_run_cgroups_cleanup_task() -> int:
    """Remove run cgroups whose worker is gone (run by beat on the sandbox queue, and at worker start)."""
    from annotation.tools.services import sandbox_cgroups_cleanup

    return len(sandbox_cgroups_cleanup())


def _cleanup_cgroups_at_start(**_: object) -> None:
    from annotation.tools.services import sandbox_cgroups_cleanup

    try:
        sandbox_cgroups_cleanup()
    except Exception:  # never keep a worker from starting
        logger.exception("could not clean up stale sandbox cgroups")


worker_ready.connect(_cleanup_cgroups_at_start, weak=False)
worker_process_init.connect(_cleanup_cgroups_at_start, weak=False)
