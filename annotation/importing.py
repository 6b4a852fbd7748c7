"""Importing pair files: validate the whole file, then insert through a bulk path.

Two passes over the file so memory stays flat for very large files: pass 1 parses and validates
every line (keeping only content hashes); if any line is bad nothing is written. Pass 2 inserts the
new pairs inside one transaction: COPY on PostgreSQL, batched ``bulk_create`` elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotation.formats import LineError, PairRecord, RecordError, parse_record
from annotation.models import ImportBatch, Pair, Project

MAX_REPORTED_ERRORS = 200


class ImportValidationError(Exception):
    """The file has invalid lines; nothing was imported."""

    def __init__(self, errors: list[LineError], total: int, filename: str) -> None:
        self.errors = errors
        self.total = total
        self.filename = filename
        shown = "\n".join(f"{filename}: {e}" for e in errors[:20])
        more = f"\n... and {total - 20} more" if total > 20 else ""
        super().__init__(f"{total} invalid line(s) in {filename}; nothing imported.\n{shown}{more}")


@dataclass
class ImportResult:
    batch_id: int
    n_lines: int
    n_imported: int
    n_duplicates: int
    errors: list[LineError] = field(default_factory=list)


def _records(path: Path) -> Iterator[tuple[int, str]]:
    # utf-8-sig: a byte-order mark (as some Windows editors write) is not part of the first record.
    with path.open("r", encoding="utf-8-sig", errors="strict") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def validate_file(path: Path, filename: str) -> tuple[int, set[str]]:
    """Pass 1: parse every line. Returns (non-blank line count, distinct content hashes).

    Raises :class:`ImportValidationError` listing (line, field, message) for every bad line.
    """
    errors: list[LineError] = []
    total_errors = 0
    hashes: set[str] = set()
    n_lines = 0
    try:
        for number, line in _records(path):
            n_lines += 1
            try:
                hashes.add(parse_record(line).content_hash)
            except RecordError as exc:
                total_errors += 1
                if len(errors) < MAX_REPORTED_ERRORS:
                    errors.append(LineError(number, exc.field, exc.message))
    except UnicodeDecodeError as exc:
        errors.append(LineError(n_lines + 1, "", f"not UTF-8 text ({exc.reason})"))
        total_errors += 1
    if n_lines == 0 and not errors:
        errors.append(LineError(0, "", "the file has no records"))
        total_errors = 1
    if errors:
        raise ImportValidationError(errors, total_errors, filename)
    return n_lines, hashes


def _existing_hashes(project: Project, hashes: Iterable[str], chunk: int = 5000) -> set[str]:
    pending = list(hashes)
    found: set[str] = set()
    for start in range(0, len(pending), chunk):
        found.update(
            Pair.objects.filter(project=project, content_hash__in=pending[start : start + chunk]).values_list(
                "content_hash", flat=True
            )
        )
    return found


def _new_records(path: Path, skip: set[str]) -> Iterator[tuple[PairRecord, str]]:
    """Pass 2: valid records whose hash is neither in ``skip`` nor seen earlier in the file."""
    seen = set(skip)
    for _number, line in _records(path):
        record = parse_record(line)
        digest = record.content_hash
        if digest in seen:
            continue
        seen.add(digest)
        yield record, digest


_COPY_COLUMNS = (
    "project_id",
    "batch_id",
    "external_id",
    "conversation",
    "response_a",
    "response_b",
    "source_label",
    "source",
    "subset",
    "metadata",
    "content_hash",
    "priority",
    "status",
    "n_claimed",
    "n_submitted",
    "created_at",
)


def _insert_copy(project: Project, batch: ImportBatch, rows: Iterator[tuple[PairRecord, str]]) -> int:
    now = timezone.now()
    table = Pair._meta.db_table
    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor: Django's wrapper has no COPY API
        with raw.copy(f"COPY {table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy:
            for record, digest in rows:
                copy.write_row(
                    (
                        project.pk,
                        batch.pk,
                        record.external_id,
                        json.dumps(record.conversation, ensure_ascii=False),
                        record.response_a,
                        record.response_b,
                        record.source_label,
                        record.source,
                        record.subset,
                        json.dumps(record.metadata, ensure_ascii=False),
                        digest,
                        0.0,
                        Pair.Status.OPEN,
                        0,
                        0,
                        now,
                    )
                )
                count += 1
    return count


def _insert_bulk(project: Project, batch: ImportBatch, rows: Iterator[tuple[PairRecord, str]]) -> int:
    size = int(settings.IMPORT_BATCH_SIZE)
    buffer: list[Pair] = []
    count = 0
    for record, digest in rows:
        buffer.append(
            Pair(
                project=project,
                batch=batch,
                external_id=record.external_id,
                conversation=record.conversation,
                response_a=record.response_a,
                response_b=record.response_b,
                source_label=record.source_label,
                source=record.source,
                subset=record.subset,
                metadata=record.metadata,
                content_hash=digest,
            )
        )
        if len(buffer) >= size:
            Pair.objects.bulk_create(buffer, batch_size=size)
            count += len(buffer)
            buffer = []
    if buffer:
        Pair.objects.bulk_create(buffer, batch_size=size)
        count += len(buffer)
    return count


def pairs_import(*, project: Project, path: Path, batch: ImportBatch) -> ImportResult:
    """Validate ``path`` whole, then insert its new pairs into ``project`` under ``batch``.

    All or nothing: on any invalid line :class:`ImportValidationError` is raised and no pair is
    written. Pairs already in the project (same conversation and responses, in either order) and
    repeats within the file are skipped and counted as duplicates.
    """
    n_lines, hashes = validate_file(path, batch.filename)
    with transaction.atomic():
        existing = _existing_hashes(project, hashes)
        rows = _new_records(path, existing)
        insert = _insert_copy if connection.vendor == "postgresql" else _insert_bulk
        n_imported = insert(project, batch, rows)
        batch.n_lines = n_lines
        batch.n_imported = n_imported
        batch.n_duplicates = n_lines - n_imported
        batch.save(update_fields=["n_lines", "n_imported", "n_duplicates"])
    return ImportResult(batch.pk, n_lines, n_imported, n_lines - n_imported)
