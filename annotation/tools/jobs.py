"""The annotator tools' background rows and how they walk the shared lifecycle (config/jobs.py).

Found by :func:`config.jobs.kinds` like every installed app's ``jobs`` module.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from config.jobs import JobKind, register


def corpus_cleanup(corpus_id: int) -> None:
    """Delete the upload and any documents of a corpus load the lifecycle ended."""
    from annotation.tools.models import Corpus, CorpusDocument

    for path in Corpus.objects.filter(pk=corpus_id).values_list("upload_path", flat=True):
        if path:
            Path(path).unlink(missing_ok=True)
    CorpusDocument.objects.filter(corpus_id=corpus_id).delete()
    Corpus.objects.filter(pk=corpus_id).update(upload_path="", n_documents=0)


# User code may itself have killed the worker: never re-run it automatically.
CODE_RUN = register(
    JobKind(
        key="code run",
        model="tools.CodeRun",
        task="annotation.tools.tasks.code_run_execute_task",
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
        model="tools.AIQuery",
        task="annotation.tools.tasks.ai_query_run_task",
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
        model="tools.Corpus",
        task="annotation.tools.tasks.corpus_load_file_task",
        kwarg="corpus_id",
        running="loading",
        max_attempts=2,
        started_field=None,
        finished_field=None,
        retry_advice="delete the corpus and upload the file again.",
        on_end="annotation.tools.jobs.corpus_cleanup",
    )
)
