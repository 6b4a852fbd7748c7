"""Celery tasks of the annotator tools: code runs, AI questions, corpus loads, sandbox cgroup cleanup.

Code runs go to the "sandbox" queue (CELERY_TASK_ROUTES: ``annotation.tools.tasks.code_run*``).
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_ready

logger = logging.getLogger(__name__)


# acks_late: a redelivered message is harmless (the claim never re-runs code whose worker died);
# the jobs maintenance ends such a run failed with a message.
@shared_task(name="annotation.tools.tasks.code_run_execute", time_limit=600, soft_time_limit=570, acks_late=True)
def code_run_execute_task(*, run_id: int) -> None:
    """Run queued code in the sandbox; the CodeRun row carries status, output and the limit hit."""
    from annotation.tools.services import code_run_execute

    run = code_run_execute(run_id=run_id)
    if run is not None:
        logger.info("code run %s: %s (limit hit: %s)", run_id, run.status, run.limit_hit or "none")


@shared_task(name="annotation.tools.tasks.ai_query_run", time_limit=600, soft_time_limit=570, acks_late=True)
def ai_query_run_task(*, query_id: int) -> None:
    """Ask the judge LLM an annotator's question; the AIQuery row carries the answer or the error."""
    from annotation.tools.services import ai_query_run

    query = ai_query_run(query_id=query_id)
    if query is not None:
        logger.info("AI query %s: %s", query_id, query.status)


@shared_task(name="annotation.tools.tasks.corpus_load_file", acks_late=True)
def corpus_load_file_task(*, corpus_id: int, path: str | None = None) -> None:
    """Load an uploaded reference corpus; the Corpus row carries status, count and error."""
    from annotation.tools.services import corpus_load_file

    corpus = corpus_load_file(corpus_id=corpus_id, path=path)
    if corpus is not None:
        logger.info("corpus %s: %s, %s documents", corpus_id, corpus.status, corpus.n_documents)


# --- sandbox cgroups left by a worker that died (kill -9) -------------------------------------------------


@shared_task(name="annotation.tools.tasks.code_run_cgroups_cleanup")
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


# --- the names these tasks had under annotation/tasks.py ---------------------------------------------
# Messages published before the tools app was carved out carry the old names and may still sit in a
# queue (a code run waiting on the sandbox queue, a corpus load, a retried AI question) when the
# new workers start; a worker that does not know a name drops the message and its row would wait
# for the jobs maintenance to fail it. So the old names stay registered and do the same work. The
# maintenance re-sends rows under the new names, so these can go once the queues have drained after
# one deploy. (The beat entry for the cgroup cleanup is renamed with the settings; an old beat
# message is harmless either way, but is still served.)


@shared_task(name="annotation.tasks.code_run_execute", time_limit=600, soft_time_limit=570, acks_late=True)
def code_run_execute_legacy_task(*, run_id: int) -> None:
    """Old name of :func:`code_run_execute_task` (messages queued before the carve)."""
    code_run_execute_task(run_id=run_id)


@shared_task(name="annotation.tasks.ai_query_run", time_limit=600, soft_time_limit=570, acks_late=True)
def ai_query_run_legacy_task(*, query_id: int) -> None:
    """Old name of :func:`ai_query_run_task` (messages queued before the carve)."""
    ai_query_run_task(query_id=query_id)


@shared_task(name="annotation.tasks.corpus_load_file", acks_late=True)
def corpus_load_file_legacy_task(*, corpus_id: int, path: str | None = None) -> None:
    """Old name of :func:`corpus_load_file_task` (messages queued before the carve)."""
    corpus_load_file_task(corpus_id=corpus_id, path=path)


@shared_task(name="annotation.tasks.code_run_cgroups_cleanup")
def code_run_cgroups_cleanup_legacy_task() -> int:
    """Old name of :func:`code_run_cgroups_cleanup_task` (messages queued before the carve)."""
    return int(code_run_cgroups_cleanup_task())
