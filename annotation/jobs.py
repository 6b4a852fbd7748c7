"""The annotation app's background rows and how they walk the shared lifecycle (config/jobs.py)."""

from __future__ import annotations

from pathlib import Path

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

# The annotator tools' kinds (code runs, AI questions, corpus loads) are in annotation/tools/jobs.py.
