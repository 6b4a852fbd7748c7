"""End to end through a real Celery worker and the configured broker (Redis in CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import ImportBatch, Pair
from annotation.services import import_batch_create
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker]


def _finished(batch_id: int) -> ImportBatch | None:
    batch = ImportBatch.objects.get(pk=batch_id)
    return batch if batch.is_finished else None


def test_uploaded_file_is_imported_by_the_worker(celery_worker: Any, project: Any, demo_slice: Path) -> None:
    upload = SimpleUploadedFile("slice.jsonl", demo_slice.read_bytes())
    batch = import_batch_create(project=project, upload=upload, filename="slice.jsonl")
    done = wait_for(lambda: _finished(batch.pk))
    assert done.status == ImportBatch.Status.DONE, done.errors
    assert (done.n_lines, done.n_imported) == (20, 20)
    assert Pair.objects.filter(project=project, batch=done).count() == 20


def test_bad_upload_fails_on_the_worker_and_imports_nothing(celery_worker: Any, project: Any, demo_slice: Path) -> None:
    content = demo_slice.read_bytes() + b'{"prompt": "Human: hi", "chosen": "x"}\n'
    batch = import_batch_create(project=project, upload=SimpleUploadedFile("bad.jsonl", content), filename="bad.jsonl")
    done = wait_for(lambda: _finished(batch.pk))
    assert done.status == ImportBatch.Status.FAILED
    assert done.errors == [{"line": 21, "field": "rejected", "message": "is missing"}]
    assert Pair.objects.count() == 0
