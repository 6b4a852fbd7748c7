"""Importing pair files: one pass that validates every line and writes the good ones, all or nothing.

Each line is parsed once (:func:`annotation.formats.parse_fields`: orjson, with the careful parser
only for lines it cannot vouch for; twice only in the one case named below) and, while no line has
failed, written at once inside one transaction:

- PostgreSQL: a parsing thread hands chunks of rows to the database thread, which sends each by
  binary COPY. Into a project that already has pairs, each chunk's hashes are first probed in the
  unique (project, content hash) index and only new rows are sent; into an empty one (a new pool)
  nothing is probed, and a repeat of an earlier chunk, caught by that index, sends the import back
  to the start with probes (:func:`_import_postgresql`). Repeats within a chunk are dropped in
  Python, so the first occurrence in the file is the one stored; memory stays flat whatever the
  file's size.
- elsewhere (the embedded SQLite default): batched ``bulk_create(ignore_conflicts=True)``
  (``INSERT OR IGNORE``, in file order), counted afterwards.

After the first bad line nothing more is written, but every line is still validated, so the
report lists every bad line (up to :data:`MAX_REPORTED_ERRORS`); then the transaction rolls back
and nothing of the file is left behind. A worker killed mid-import leaves nothing either (the
transaction never committed), so the retry imports each pair exactly once.
"""

from __future__ import annotations

import itertools
import queue
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import pq

from annotation.formats import Fields, LineError, RecordError, content_hash, parse_fields
from annotation.models import ImportBatch, Pair, Project

MAX_REPORTED_ERRORS = 200
COPY_CHUNK_BYTES = 1 << 20  # rows are sent to PostgreSQL in writes of about this size
_BOM = b"\xef\xbb\xbf"


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


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of each non-blank line, numbered as a text-mode reader would.

    Read as bytes (orjson parses UTF-8 directly; a line that is not UTF-8 fails alone, with its
    own number). A byte-order mark at the start of the file is not part of the first record. Line
    breaks are those of Python's universal newlines (``\\n``, ``\\r\\n`` and a lone ``\\r``).
    """
    number = 0
    with path.open("rb") as handle:
        first = handle.readline()
        for raw in itertools.chain([first.removeprefix(_BOM)], handle):
            if b"\r" in raw:
                for part in _split_cr(raw):
                    number += 1
                    if not _blank(part):
                        yield number, part
                continue
            number += 1
            if raw[:1] == b"{" or not _blank(raw):  # a record starts with "{"; anything else is looked at
                yield number, raw


def _blank(raw: bytes) -> bool:
    return not raw.strip() or not raw.decode("utf-8", "replace").strip()  # Unicode spaces are blank too


def _split_cr(raw: bytes) -> list[bytes]:
    parts = raw.replace(b"\r\n", b"\n").split(b"\r")
    if parts[-1] == b"":  # "...\r" at the end of the file: the break closes the line, opens none
        parts.pop()
    return parts


Row = tuple[int, Fields, str]  # (line number, parsed fields, content hash)
Sink = Callable[[Row], None]


@dataclass
class _Scan:
    n_lines: int = 0
    errors: list[LineError] = field(default_factory=list)
    total_errors: int = 0

    def check(self, filename: str) -> None:
        """Raise :class:`ImportValidationError` listing every bad line, if there was one."""
        if self.n_lines == 0 and not self.errors:
            self.errors.append(LineError(0, "", "the file has no records"))
            self.total_errors = 1
        if self.errors:
            raise ImportValidationError(self.errors, self.total_errors, filename)


def _scan(path: Path, sink: Sink) -> _Scan:
    """Validate every line of ``path``, passing each good row to ``sink`` until a line fails.

    Every line is read whatever happens, so the result counts and lists every bad line.
    """
    scan = _Scan()
    errors = scan.errors
    for number, raw in _lines(path):
        scan.n_lines += 1
        try:
            fields = parse_fields(raw)
        except RecordError as exc:
            error = LineError(number, exc.field, exc.message)
        except UnicodeDecodeError as exc:
            error = LineError(number, "", f"not UTF-8 text ({exc.reason})")
        else:
            if not scan.total_errors:
                sink((number, fields, content_hash(fields[0], fields[1], fields[2])))
            continue
        scan.total_errors += 1
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.append(error)
    return scan


def validate_file(path: Path, filename: str) -> int:
    """Validate ``path`` without writing anything. Returns the number of records.

    Raises :class:`ImportValidationError` listing (line, field, message) for every bad line.
    """
    scan = _scan(path, lambda row: None)
    scan.check(filename)
    return scan.n_lines


# --- PostgreSQL: a parsing thread, and a binary COPY per chunk of new pairs -----------------------

# The COPY's columns: those every row of an import shares first, so they are packed once per import.
_COPY_COLUMNS = (
    "project_id",
    "batch_id",
    "priority",
    "status",
    "n_claimed",
    "n_submitted",
    "created_at",
    "external_id",
    "conversation",
    "response_a",
    "response_b",
    "source_label",
    "source",
    "subset",
    "metadata",
    "content_hash",
)
# COPY BINARY: the signature, no flags, no header extension; the end is a field count of -1.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz travels as microseconds since then
_pack_int = struct.Struct("!i").pack
_EMPTY = _pack_int(0)
_JSONB_VERSION = b"\x01"  # jsonb's binary form is a version byte, then the JSON text
_IMPORT_LOCK = 0x50414952  # "PAIR": the advisory-lock namespace of pair imports (the key is the project id)


def _shared_fields(project: Project, batch: ImportBatch, now: datetime) -> bytes:
    """The binary COPY fields every row of this import shares: field count, then the first 7 columns."""
    status = Pair.Status.OPEN.value.encode()
    micros = (now - _PG_EPOCH) // timedelta(microseconds=1)
    return struct.pack(
        f"!hiqiqidi{len(status)}sihihiq",
        len(_COPY_COLUMNS),
        *(8, project.pk),
        *(8, batch.pk),
        *(8, 0.0),  # priority
        *(len(status), status),
        *(2, 0),  # n_claimed
        *(2, 0),  # n_submitted
        *(8, micros),  # created_at
    )


def _binary_row(shared: bytes, fields: Fields, digest: str) -> bytes:
    conversation, response_a, response_b, label, external_id, source, subset, metadata = fields
    conversation_json = orjson.dumps(conversation)
    metadata_json = orjson.dumps(metadata)
    external = external_id.encode()
    first = response_a.encode()
    second = response_b.encode()
    pack = _pack_int
    return b"".join(
        (
            shared,
            pack(len(external)),
            external,
            pack(len(conversation_json) + 1),
            _JSONB_VERSION,
            conversation_json,
            pack(len(first)),
            first,
            pack(len(second)),
            second,
            _LABEL_A if label else _EMPTY,
            _text_field(source),
            _text_field(subset),
            pack(len(metadata_json) + 1),
            _JSONB_VERSION,
            metadata_json,
            _HASH_LENGTH,
            digest.encode(),
        )
    )


def _text_field(value: str) -> bytes:
    return _pack_int(len(data := value.encode())) + data if value else _EMPTY


_LABEL_A = _pack_int(1) + Pair.SourceLabel.A.value.encode()
_HASH_LENGTH = _pack_int(64)  # a SHA-256 hex digest


Chunk = list[tuple[str, bytes]]  # (content hash, binary COPY row)


class _Parser(threading.Thread):
    """Reads and validates the file, handing chunks of COPY rows to the importing (database) thread.

    Parsing is Python work and the database's insert is PostgreSQL's, so the two overlap: the
    database thread waits on its socket (without the GIL) while this one parses the next chunk.
    The queue holds at most two chunks, so memory is flat whatever the size of the file.
    """

    def __init__(self, path: Path, shared: bytes, chunk_rows: int) -> None:
        super().__init__(name="pair-import-parser", daemon=True)
        self.path, self.shared, self.chunk_rows = path, shared, chunk_rows
        self.chunks: queue.Queue[Chunk | None] = queue.Queue(maxsize=2)
        self.stopped = threading.Event()  # set by the database thread when it gives up
        self.scan: _Scan | None = None
        self.failure: BaseException | None = None

    def run(self) -> None:
        chunk: Chunk = []
        shared = self.shared

        def sink(row: Row) -> None:
            nonlocal chunk
            _number, fields, digest = row
            chunk.append((digest, _binary_row(shared, fields, digest)))
            if len(chunk) >= self.chunk_rows:
                self._put(chunk)
                chunk = []

        try:
            self.scan = _scan(self.path, sink)
            if chunk and not self.scan.total_errors:
                self._put(chunk)
        except _Stopped:
            return
        except BaseException as exc:  # handed to the database thread, which raises it
            self.failure = exc
        with suppress(_Stopped):
            self._put(None)

    def _put(self, item: Chunk | None) -> None:
        while not self.stopped.is_set():
            try:
                self.chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _Stopped


class _Stopped(Exception):
    """The database thread stopped reading chunks (it failed); the parser ends."""


# The chunk's hashes the project already has (the import's own earlier chunks included). A LATERAL
# subquery per hash, so each is one probe of the unique (project, content hash) index whatever the
# statistics say: as a join, the planner (whose statistics have not seen the rows this import adds)
# chose to read every pair of the project for each chunk, which made a 1M-pair import quadratic.
_LOOKUP_SQL = (
    "SELECT h FROM unnest(%s::text[]) AS h, LATERAL"
    f" (SELECT 1 FROM {Pair._meta.db_table} WHERE project_id = %s AND content_hash = h LIMIT 1) AS found"
)


def _copy_chunk(cursor: Any, project: Project, chunk: Chunk, copy_sql: str, *, look_up: bool = True) -> int:
    """Insert the pairs of ``chunk`` the project lacks (earlier chunks included); returns how many.

    With ``look_up``, one probe of the unique index per hash (:data:`_LOOKUP_SQL`) first, so only new
    rows are sent. Without it, the caller knows the project had no pairs before this import: a row
    the table already has can only be an earlier chunk's, and the COPY fails on the unique index
    (:func:`_import_postgresql` then reads the file again, looking up). Repeats within the chunk
    are dropped here either way, so the first occurrence in the file is the one stored.
    """
    seen: set[str] = set()
    if look_up:
        cursor.execute(_LOOKUP_SQL, [[digest for digest, _row in chunk], project.pk])
        seen.update(digest for (digest,) in cursor.fetchall())
    rows = [_COPY_HEADER]
    for digest, row in chunk:
        if digest not in seen:
            seen.add(digest)
            rows.append(row)
    if len(rows) == 1:
        return 0
    rows.append(_COPY_TRAILER)
    with cursor.cursor.copy(copy_sql) as copy:  # the psycopg cursor: Django's wrapper has no COPY API
        copy.write(b"".join(rows))
    return len(rows) - 2


class _RepeatAcrossChunks(Exception):
    """A COPY sent without look-ups met a pair an earlier chunk of the file had stored."""


_UNIQUE_CONTENT = "pair_unique_content_per_project"  # Pair.Meta's unique (project, content hash) constraint


def _import_postgresql(project: Project, batch: ImportBatch, path: Path) -> tuple[int, int]:
    """Write the file's new pairs; returns (records, pairs imported).

    Into a project that has no pairs yet (a new pool: the bulk case) the chunks go straight to COPY,
    without the per-hash look-up, under a savepoint: only a repeat of an earlier chunk of the file
    can then break the unique index, and if one does, the savepoint undoes this attempt and the file
    is read again with look-ups. So a file without such repeats is read once and probed never, and
    one with them costs at most a second reading. A project that has pairs is always looked up.
    """
    table = Pair._meta.db_table
    copy_sql = f"COPY {table} ({', '.join(_COPY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
    shared = _shared_fields(project, batch, timezone.now())
    with connection.cursor() as cursor, _bulk_load_settings(cursor, table):
        # Imports into one project take turns (the lock ends with the transaction): a concurrent
        # import's uncommitted rows would escape the look-up below and fail this COPY's unique check.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, mod(%s::bigint, 2147483647)::integer)", [_IMPORT_LOCK, project.pk]
        )
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE project_id = %s)", [project.pk])
        if not cursor.fetchone()[0]:
            try:
                with transaction.atomic():  # the savepoint a repeat across chunks rolls back to
                    return _load(cursor, project, batch, path, shared, copy_sql, look_up=False)
            except _RepeatAcrossChunks:
                pass
        return _load(cursor, project, batch, path, shared, copy_sql, look_up=True)


def _load(
    cursor: Any, project: Project, batch: ImportBatch, path: Path, shared: bytes, copy_sql: str, *, look_up: bool
) -> tuple[int, int]:
    """One reading of the file: the parser thread's chunks, each written by :func:`_copy_chunk`."""
    parser = _Parser(path, shared, int(settings.IMPORT_BATCH_SIZE))
    n_imported = 0
    parser.start()
    try:
        while (chunk := parser.chunks.get()) is not None:
            try:
                n_imported += _copy_chunk(cursor, project, chunk, copy_sql, look_up=look_up)
            except psycopg.errors.UniqueViolation as exc:
                if look_up or exc.diag.constraint_name != _UNIQUE_CONTENT:
                    raise
                raise _RepeatAcrossChunks from exc
    finally:
        parser.stopped.set()
        parser.join()
    if parser.failure is not None:
        raise parser.failure
    assert parser.scan is not None
    parser.scan.check(batch.filename)  # a bad line: raised here, and the caller's rollback undoes the COPYs
    return parser.scan.n_lines, n_imported


@contextmanager
def _bulk_load_settings(cursor: Any, table: str) -> Iterator[None]:
    """Settings for this transaction while the import runs; the caller's come back at the end.

    - lz4 for the values PostgreSQL compresses on insert (responses and conversations over about
      2 kB): a fraction of the default pglz's cost; reads are transparent and the column default
      is unchanged. Only where the server was built with it.
    - Django's foreign keys are deferred to the commit, where 2 checks per pair would run after
      the import while nothing else does; made immediate here, each COPY checks its own rows
      while the parser works on the next chunk.
    """
    wanted: dict[str, str] = {}
    cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    if cursor.fetchone()[0]:
        wanted["default_toast_compression"] = "lz4"
    previous: dict[str, str] = {}
    if wanted:
        names = list(wanted)
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        previous = dict(zip(names, cursor.fetchone(), strict=True))
    cursor.execute(
        "SELECT quote_ident(conname) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'"
        " AND condeferrable AND condeferred AND confrelid IN (%s::regclass, %s::regclass)",
        [table, Project._meta.db_table, ImportBatch._meta.db_table],
    )
    deferred = ", ".join(name for (name,) in cursor.fetchall())
    _set_local(cursor, wanted)
    if deferred:
        cursor.execute(f"SET CONSTRAINTS {deferred} IMMEDIATE")
    try:
        yield
    finally:
        if cursor.cursor.connection.info.transaction_status == pq.TransactionStatus.INTRANS:  # not after an error
            _set_local(cursor, previous)
            if deferred:
                cursor.execute(f"SET CONSTRAINTS {deferred} DEFERRED")


def _set_local(cursor: Any, values: dict[str, str]) -> None:
    """``SET LOCAL`` each setting (``set_config(..., true)``: until the transaction ends)."""
    if not values:
        return
    cursor.execute(
        "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
        [item for pair in values.items() for item in pair],
    )


# --- elsewhere (SQLite): batched INSERT OR IGNORE ------------------------------------------------


def _import_bulk(project: Project, batch: ImportBatch, path: Path) -> tuple[int, int]:
    size = int(settings.IMPORT_BATCH_SIZE)
    buffer: list[Pair] = []

    def flush() -> None:
        # Ignoring conflicts skips pairs already stored and earlier repeats in the file (rows go in
        # file order); every other constraint of a validated row holds, so nothing else is ignored.
        Pair.objects.bulk_create(buffer, batch_size=size, ignore_conflicts=True)
        buffer.clear()

    def sink(row: Row) -> None:
        _number, (conversation, response_a, response_b, label, external_id, source, subset, metadata), digest = row
        buffer.append(
            Pair(
                project=project,
                batch=batch,
                external_id=external_id,
                conversation=conversation,
                response_a=response_a,
                response_b=response_b,
                source_label=label,
                source=source,
                subset=subset,
                metadata=metadata,
                content_hash=digest,
            )
        )
        if len(buffer) >= size:
            flush()

    scan = _scan(path, sink)
    scan.check(batch.filename)
    if buffer:
        flush()
    return scan.n_lines, Pair.objects.filter(batch=batch).count()


def pairs_import(*, project: Project, path: Path, batch: ImportBatch) -> ImportResult:
    """Validate ``path`` whole and insert its new pairs into ``project`` under ``batch``, in one pass.

    All or nothing: on any invalid line :class:`ImportValidationError` is raised and no pair is
    written. Pairs already in the project (same conversation and responses, in either order) and
    repeats within the file are skipped and counted as duplicates.
    """
    run: Callable[[Project, ImportBatch, Path], tuple[int, int]]
    run = _import_postgresql if connection.vendor == "postgresql" else _import_bulk
    with transaction.atomic():
        n_lines, n_imported = run(project, batch, path)
        batch.n_lines = n_lines
        batch.n_imported = n_imported
        batch.n_duplicates = n_lines - n_imported
        batch.save(update_fields=["n_lines", "n_imported", "n_duplicates"])
    return ImportResult(batch.pk, n_lines, n_imported, n_lines - n_imported)
