"""The annotation app's background rows and how they walk the shared lifecycle (config/jobs.py)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from config.jobs import JobKind, register


def _import_errors(message: str) -> dict[str, object]:
    return {"errors": [{"line": 0, "field": "", "message": message}]}


def import_batch_cleanup(batch_id: int) -> None:
    """Delete the upload of a batch the lifecycle ended (the worker died, or none took it)."""
    from annotation.models import ImportBatch

    for path in ImportBatch.objects.filter(pk=batch_id).values_list("path", flat=True):
        if path:
            Path(path).unlink(missing_ok=True)
    ImportBatch.objects.filter(pk=batch_id).update(path="")


def corpus_cleanup(corpus_id: int) -> None:
    """Delete the upload and any documents of a corpus load the lifecycle ended."""
    from annotation.models import Corpus, CorpusDocument

    for path in Corpus.objects.filter(pk=corpus_id).values_list("upload_path", flat=True):
        if path:
            Path(path).unlink(missing_ok=True)
    CorpusDocument.objects.filter(corpus_id=corpus_id).delete()
    Corpus.objects.filter(pk=corpus_id).update(upload_path="", n_documents=0)


# An import is one transaction: a run killed midway leaves nothing, so it is retried once.
IMPORT = register(
    JobKind(
        key="import",
        model="annotation.ImportBatch",
        task="annotation.tasks.import_batch_run_task",
        kwarg="batch_id",
        failed="failed",
        max_attempts=2,
        retry_advice="nothing was imported; upload the file again.",
        fail_fields=_import_errors,
        on_end="annotation.jobs.import_batch_cleanup",
    )
)

# User code may itself have killed the worker: never re-run it automatically.
CODE_RUN = register(
    JobKind(
        key="code run",
        model="annotation.CodeRun",
        task="annotation.tasks.code_run_execute_task",
        kwarg="run_id",
        max_attempts=1,
        queued_timeout_s=lambda: int(settings.TOOLS_QUEUED_TIMEOUT_S),
        resend_after_s=lambda: None,
        retry_advice="run it again.",
    )
)

AI_QUERY = register(
    JobKind(
        key="AI question",
        model="annotation.AIQuery",
        task="annotation.tasks.ai_query_run_task",
        kwarg="query_id",
        max_attempts=2,
        queued_timeout_s=lambda: int(settings.TOOLS_QUEUED_TIMEOUT_S),
        resend_after_s=lambda: None,
        retry_advice="ask again.",
    )
)

# Loading skips documents already loaded, so a retried run continues where the dead one stopped.
CORPUS_LOAD = register(
    JobKind(
        key="corpus load",
        model="annotation.Corpus",
        task="annotation.tasks.corpus_load_file_task",
        kwarg="corpus_id",
        running="loading",
        max_attempts=2,
        started_field=None,
        finished_field=None,
        retry_advice="delete the corpus and upload the file again.",
        on_end="annotation.jobs.corpus_cleanup",
    )
)
