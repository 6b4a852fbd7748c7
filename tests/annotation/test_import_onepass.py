"""The one-pass import: the fast parser agrees with the careful one, hashes stay what they were,
rows reach the database exactly as parsed, dedup keeps the first occurrence across chunks, and a
bad line anywhere (after rows were already written) leaves nothing behind.

Runs on SQLite and on PostgreSQL alike (PostgreSQL: run with DATABASE_URL); the PostgreSQL-only
checks skip elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from annotation import formats, importing
from annotation.formats import RecordError, content_hash, parse_fields, parse_record
from annotation.importing import ImportValidationError
from annotation.models import ImportBatch, Pair
from annotation.services import import_file

from .test_import_hardening import BAD_LINES

GOOD = {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": "4", "rejected": "5"}


def rec(**changes: Any) -> str:
    return json.dumps({**GOOD, **changes}, ensure_ascii=False)


def careful(line: str) -> formats.Fields:
    """The stdlib-only path, as the importer ran before orjson."""
    return formats._fields(formats._careful_loads(line))


# --- the two parsers agree --------------------------------------------------------------------

TRICKY_GOOD = [
    rec(),
    rec(id=7, source="s", subset="t", metadata={"a": [1, 2.5, {"b": None, "c": True}], "é": "ü"}),
    rec(metadata={"n": 2**63 - 1, "m": -(2**63), "f": 1.5e308, "tiny": 1e-999}),
    rec(metadata={"f": 0.5, "nineteen": 1234567890123456789}),
    rec(chosen='tab\there\nnew \\ back "quote" \u2028 \U0001f600', rejected="\x01\x1f\x7f"),
    json.dumps(
        {
            "prompt": [{"role": "system", "content": "Be brief."}, {"role": "human", "content": "Hi"}],
            "response_a": "Hello",
            "response_b": "Hey",
        }
    ),  # fmt: skip
    rec(metadata={"deep": json.loads("[" * (formats.MAX_DEPTH - 2) + "]" * (formats.MAX_DEPTH - 2))}),
    '{"prompt": "hi", "chosen": "a", "rejected": "b", "k": 1, "k": 2}',
    "\ufeff" + rec(),
    rec(prompt="\\u0000 is written out, not a NUL"),
]


@pytest.mark.parametrize("line", TRICKY_GOOD)
def test_fast_path_gives_what_the_careful_path_gives(line: str) -> None:
    assert parse_fields(line.encode()) == careful(line)
    assert parse_record(line).content_hash == content_hash(*careful(line)[:3])


HUGE_INT_LINES = [
    # orjson reads integers past 64 bits unsigned as floats: the fast path must not let them through.
    ('{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"n": 18446744073709551616}}', "metadata.n"),
    (
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"f": 0.5, "n": -9223372036854775809}}',
        "metadata.n",
    ),  # fmt: skip
    ('{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"n": 9223372036854775808}}', "metadata.n"),
    ('{"prompt": "hi", "chosen": "a", "rejected": "b", "id": 99999999999999999999999}', "id"),
]


@pytest.mark.parametrize(("line", "field"), [*HUGE_INT_LINES, *[(p.values[0], p.values[1]) for p in BAD_LINES]])
def test_fast_path_refuses_what_the_careful_path_refuses(line: str, field: str) -> None:
    with pytest.raises(RecordError) as careful_info:
        careful(line)
    with pytest.raises(RecordError) as info:
        parse_fields(line.encode("utf-8", errors="surrogatepass"))
    assert (info.value.field, info.value.message) == (careful_info.value.field, careful_info.value.message)
    assert info.value.field == field


def test_hashes_are_unchanged_for_every_escape_and_control_character() -> None:
    """Stored hashes were sha256 of the stdlib's compact JSON; the orjson form must be byte-identical."""
    texts = ["".join(chr(c) for c in range(0, 0x80)), '\u2028\u2029\u0085\ufeff\ufffd é 😀 \\ "', "plain"]
    for text in texts:
        conversation = [{"role": "user", "content": text}, {"role": "assistant", "content": text[::-1]}]
        for a, b in [(text, "x"), ("y", text)]:
            first, second = sorted([a, b])
            stdlib = json.dumps([conversation, first, second], ensure_ascii=False, separators=(",", ":"))
            assert content_hash(conversation, a, b) == hashlib.sha256(stdlib.encode()).hexdigest()
    # A value orjson refuses (a lone surrogate) still hashes, through the stdlib.
    assert len(content_hash([{"role": "user", "content": "\ud800"}], "a", "b")) == 64


# --- rows in the database ---------------------------------------------------------------------


def test_values_reach_the_database_exactly_as_parsed(project: Any, tmp_path: Path) -> None:
    lines = [
        rec(
            chosen='tab\there\nnew \\N back\\slash "q" \u2028 😀',
            rejected="\r\nx",
            id=12,
            source="src",
            subset="sub",
            metadata={"k": [1, 2.5, None, True, {"é": "\t"}], "big": 2**63 - 1},
        ),  # fmt: skip
        json.dumps({"prompt": [{"role": "user", "content": " Hi\\n "}], "response_a": "A", "response_b": "B"}),
    ]
    path = tmp_path / "values.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = timezone.now()
    result = import_file(project=project, path=path)
    assert (result.n_imported, result.n_duplicates) == (2, 0)
    stored = list(Pair.objects.filter(project=project).order_by("id"))
    for pair, line in zip(stored, lines, strict=True):
        conversation, a, b, label, external_id, source, subset, metadata = careful(line)
        assert (pair.conversation, pair.response_a, pair.response_b, pair.source_label) == (conversation, a, b, label)
        assert (pair.external_id, pair.source, pair.subset, pair.metadata) == (external_id, source, subset, metadata)
        assert pair.content_hash == content_hash(conversation, a, b)
        assert (pair.priority, pair.status, pair.n_claimed, pair.n_submitted) == (0.0, Pair.Status.OPEN, 0, 0)
        assert pair.batch_id == result.batch_id and pair.project_id == project.pk
        assert before - timedelta(seconds=1) <= pair.created_at <= timezone.now()


def test_repeats_across_chunks_keep_the_first_occurrence(project: Any, tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_BATCH_SIZE = 2  # five chunks: repeats in the same chunk and in later ones
    first = rec(id="first", chosen="yes", rejected="no")
    swapped = rec(id="swapped", chosen="no", rejected="yes")
    lines = [first, rec(id="a", chosen="1"), swapped, rec(id="b", chosen="2"), rec(id="c", chosen="3"),
             swapped, first, rec(id="a-again", chosen="1"), rec(id="d", chosen="4")]  # fmt: skip
    path = tmp_path / "repeats.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_file(project=project, path=path)
    assert (result.n_lines, result.n_imported, result.n_duplicates) == (9, 5, 4)
    kept = Pair.objects.get(project=project, external_id__in=["first", "swapped"])
    assert (kept.external_id, kept.response_a, kept.response_b, kept.source_label) == ("first", "yes", "no", "A")
    stored = Pair.objects.filter(project=project).order_by("id").values_list("external_id", flat=True)
    assert list(stored) == ["first", "a", "b", "c", "d"]  # file order
    again = import_file(project=project, path=path)
    assert (again.n_imported, again.n_duplicates) == (0, 9)


@pytest.fixture
def copy_calls(require_postgres: None, settings: Any, monkeypatch: Any) -> list[bool]:
    """Chunks of two; records, for each chunk written, whether its hashes were looked up first (PostgreSQL's
    COPY path: in CI, with REQUIRE_SERVICES=1, a missing PostgreSQL fails instead of skipping)."""
    settings.IMPORT_BATCH_SIZE = 2
    calls: list[bool] = []
    real = importing._copy_chunk

    def spy(*args: Any, look_up: bool = True) -> int:
        calls.append(look_up)
        return real(*args, look_up=look_up)

    monkeypatch.setattr(importing, "_copy_chunk", spy)
    return calls


def test_a_new_pool_is_copied_without_lookups_and_a_project_with_pairs_is_looked_up(
    project: Any, tmp_path: Path, copy_calls: list[bool]
) -> None:
    path = tmp_path / "new.jsonl"
    path.write_text("\n".join(rec(id=str(i), chosen=f"answer {i}") for i in range(5)) + "\n", encoding="utf-8")
    first = import_file(project=project, path=path)
    assert (first.n_imported, first.n_duplicates) == (5, 0)
    assert copy_calls == [False, False, False]  # three chunks, none probed: the project was empty
    copy_calls.clear()
    more = tmp_path / "more.jsonl"
    more.write_text("\n".join(rec(id=str(i), chosen=f"answer {i}") for i in range(3, 8)) + "\n", encoding="utf-8")
    second = import_file(project=project, path=more)
    assert (second.n_imported, second.n_duplicates) == (3, 2)
    assert copy_calls == [True, True, True]
    assert Pair.objects.filter(project=project).count() == 8


def test_a_repeat_across_chunks_of_a_new_pool_reads_the_file_again_with_lookups(
    project: Any, tmp_path: Path, copy_calls: list[bool]
) -> None:
    """The unique index catches the repeat; the savepoint undoes the first attempt, rows stay single."""
    lines = [rec(id="first", chosen="yes", rejected="no"), rec(id="a", chosen="1"), rec(id="b", chosen="2"),
             rec(id="again", chosen="no", rejected="yes"), rec(id="c", chosen="3")]  # fmt: skip
    path = tmp_path / "repeat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_file(project=project, path=path)
    assert copy_calls == [False, False, True, True, True]  # the second chunk's COPY met "first" again
    assert (result.n_lines, result.n_imported, result.n_duplicates) == (5, 4, 1)
    stored = Pair.objects.filter(project=project).order_by("id").values_list("external_id", flat=True)
    assert list(stored) == ["first", "a", "b", "c"]
    assert ImportBatch.objects.get(pk=result.batch_id).n_imported == 4


def test_another_unique_violation_is_not_taken_for_a_repeat(
    project: Any, tmp_path: Path, copy_calls: list[bool]
) -> None:
    with connection.cursor() as cursor:  # a unique index the importer knows nothing of
        cursor.execute("CREATE UNIQUE INDEX test_pair_one_per_source ON annotation_pair (project_id, source)")
    path = tmp_path / "clash.jsonl"
    path.write_text("\n".join(rec(id=str(i), chosen=f"a{i}", source="same") for i in range(3)) + "\n", "utf-8")
    with pytest.raises(Exception, match="test_pair_one_per_source"):
        import_file(project=project, path=path)
    assert copy_calls == [False]  # raised as it came, not retried with look-ups
    assert Pair.objects.count() == 0


def test_a_late_bad_line_undoes_chunks_already_written(project: Any, tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_BATCH_SIZE = 3
    good = [rec(id=str(i), chosen=f"answer {i}") for i in range(20)]
    lines = [*good[:15], rec(chosen=None), *good[15:18], "{", *good[18:]]
    path = tmp_path / "late.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    batches = ImportBatch.objects.count()
    with pytest.raises(ImportValidationError) as info:
        import_file(project=project, path=path)
    assert [(e.line, e.field) for e in info.value.errors] == [(16, "chosen"), (20, "")]
    assert Pair.objects.count() == 0 and ImportBatch.objects.count() == batches


def test_line_numbers_follow_text_mode_line_breaks(project: Any, tmp_path: Path) -> None:
    """CRLF, a lone CR, a BOM, blank and Unicode-space lines: numbered as a text-mode reader would."""
    path = tmp_path / "breaks.jsonl"
    data = (
        b"\xef\xbb\xbf" + rec(id="1").encode() + b"\r\n"
        + b"\r\n"
        + rec(id="2", chosen="two").encode() + b"\r" + rec(id="3", chosen="three").encode() + b"\n"
        + "\u00a0\u3000\n".encode()
        + b'{"prompt": "caf\xe9"}\n'  # line 6: Latin-1, not UTF-8
        + rec(id="7", chosen=3).encode() + b"\n"
    )  # fmt: skip
    path.write_bytes(data)
    with pytest.raises(ImportValidationError) as info:
        import_file(project=project, path=path)
    assert [(e.line, e.field) for e in info.value.errors] == [(6, ""), (7, "chosen")]
    assert "not UTF-8" in info.value.errors[0].message
    path.write_bytes(data.split(b'{"prompt": "caf')[0])
    result = import_file(project=project, path=path)
    assert (result.n_lines, result.n_imported) == (3, 3)
    assert sorted(Pair.objects.values_list("external_id", flat=True)) == ["1", "2", "3"]


def test_a_parser_failure_reaches_the_caller_and_writes_nothing(project: Any, tmp_path: Path, settings: Any) -> None:
    settings.IMPORT_BATCH_SIZE = 2
    path = tmp_path / "boom.jsonl"
    path.write_text("\n".join(rec(id=str(i), chosen=f"a{i}") for i in range(9)) + "\n", encoding="utf-8")
    real = formats.parse_fields
    calls = 0

    def flaky(data: bytes) -> formats.Fields:
        nonlocal calls
        calls += 1
        if calls == 7:
            raise OSError("disk went away")
        return real(data)

    with mock.patch.object(importing, "parse_fields", flaky), pytest.raises(OSError, match="disk went away"):
        import_file(project=project, path=path)
    assert Pair.objects.count() == 0
    assert not [t for t in threading.enumerate() if t.name == "pair-import-parser"]


def test_postgresql_settings_come_back_after_the_import(project: Any, demo_slice: Path) -> None:
    """lz4 and immediate foreign keys hold inside the import only."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (run with DATABASE_URL)")
    show = "SELECT " + ", ".join(
        f"current_setting('{name}')"
        for name in ("default_toast_compression", "enable_seqscan", "enable_indexscan", "enable_hashjoin")
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(show)
        before = cursor.fetchone()
        import_file(project=project, path=demo_slice)
        cursor.execute(show)
        assert cursor.fetchone() == before
        # The foreign keys are deferred again: a dangling batch id is let through until the commit.
        pair = Pair.objects.filter(project=project).first()
        assert pair is not None
        cursor.execute("UPDATE annotation_pair SET batch_id = -1 WHERE id = %s", [pair.pk])
        cursor.execute("UPDATE annotation_pair SET batch_id = NULL WHERE id = %s", [pair.pk])


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_into_one_project_take_turns(project: Any, tmp_path: Path) -> None:
    """Two overlapping files at once: each pair stored once, neither import fails on the other's rows."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only (run with DATABASE_URL); SQLite writers take turns anyway")
    lines = [rec(id=str(i), chosen=f"answer {i}") for i in range(90)]
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    paths[0].write_text("\n".join(lines[:60]) + "\n", encoding="utf-8")
    paths[1].write_text("\n".join(lines[30:]) + "\n", encoding="utf-8")
    real = importing._copy_chunk

    def slow_copy(*args: Any, **kwargs: Any) -> int:
        time.sleep(0.5)  # both imports would look up existing hashes before either commits
        return real(*args, **kwargs)

    results: list[Any] = []

    def run(path: Path) -> None:
        try:
            results.append(import_file(project=project, path=path))
        except Exception as exc:  # reported below
            results.append(exc)
        finally:
            connection.close()

    with mock.patch.object(importing, "_copy_chunk", slow_copy):
        threads = [threading.Thread(target=run, args=(path,)) for path in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted((r.n_imported, r.n_duplicates) for r in results) in ([(30, 30), (60, 0)], [(60, 0), (30, 30)])
    assert Pair.objects.filter(project=project).count() == 90
