"""Hostile or odd input files: a BOM is accepted; values that cannot be stored are line-and-field errors.

Each bad value sits in line 2 of a three-line file between good lines, and the import must name
line 2 and the field and write nothing, on SQLite and on PostgreSQL alike (run with DATABASE_URL).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from annotation.formats import MAX_DEPTH, RecordError, parse_record
from annotation.importing import ImportValidationError
from annotation.models import ImportBatch, Pair
from annotation.services import import_batch_run, import_file

GOOD = {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": "4", "rejected": "5"}


def good_line(n: int) -> str:
    return json.dumps({**GOOD, "chosen": f"{n}", "rejected": f"not {n}"})


def write_lines(path: Path, lines: list[str], *, bom: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def test_a_utf8_bom_is_accepted(project: Any, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bom.jsonl", [good_line(1), good_line(2)], bom=True)
    result = import_file(project=project, path=path)
    assert (result.n_lines, result.n_imported) == (2, 2)
    assert sorted(Pair.objects.values_list("response_a", flat=True)) == ["1", "2"]


def test_a_bom_left_on_a_line_is_ignored_by_the_parser() -> None:
    assert parse_record("\ufeff" + good_line(3)).response_a == "3"


NESTED = "[" * 5000 + "]" * 5000
SHALLOW_BUT_TOO_DEEP = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
# Raw JSON text (not json.dumps of Python values) so the file holds exactly what a hostile source writes.
BAD_LINES = [
    pytest.param('{"prompt": "hi\\u0000there", "chosen": "a", "rejected": "b"}', "prompt", "NUL", id="nul-prompt"),
    pytest.param('{"prompt": "hi", "chosen": "a\\u0000", "rejected": "b"}', "chosen", "NUL", id="nul-chosen"),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"k": ["x", "\\u0000"]}}',
        "metadata.k[1]",
        "NUL",
        id="nul-metadata",
    ),
    pytest.param('{"prompt": "hi", "chosen": "a", "rejected": "b\\ud800"}', "rejected", "surrogate", id="surrogate"),
    pytest.param(
        '{"prompt": [{"role": "user", "content": "\\udfff x"}], "chosen": "a", "rejected": "b"}',
        "prompt[0].content",
        "surrogate",
        id="surrogate-message",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"score": NaN}}',
        "metadata.score",
        "NaN",
        id="nan",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"score": -Infinity}}',
        "metadata.score",
        "Infinity",
        id="infinity",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"score": 1e999}}',
        "metadata.score",
        "out of range",
        id="float-overflow",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "id": ' + "9" * 5000 + "}",
        "id",
        "5000 digits",
        id="5000-digit-int",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"n": 9223372036854775808}}',
        "metadata.n",
        "64-bit",
        id="int-over-64-bits",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": ' + NESTED + "}",
        "metadata",
        "nested more than",
        id="nesting-5000",
    ),
    pytest.param(
        '{"prompt": "hi", "chosen": "a", "rejected": "b", "metadata": {"x": ' + SHALLOW_BUT_TOO_DEEP + "}}",
        f"metadata.x{'[0]' * (MAX_DEPTH - 1)}",
        "nested more than",
        id="nesting-past-limit",
    ),
    pytest.param('{"prompt": "hi", "chosen": "a", "rejected": "b", "k\\u0000": 1}', "", "NUL", id="nul-key"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD_LINES)
def test_bad_value_is_a_line_and_field_error(bad: str, field: str, message: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_record(bad)
    assert info.value.field == field
    assert message in info.value.message


@pytest.mark.parametrize(("bad", "field", "message"), BAD_LINES)
def test_bad_value_fails_the_worker_import_with_line_and_field_and_imports_nothing(
    project: Any, tmp_path: Path, bad: str, field: str, message: str
) -> None:
    path = write_lines(tmp_path / "up.jsonl", [good_line(1), bad, good_line(3)])
    batch = ImportBatch.objects.create(project=project, filename="up.jsonl", path=str(path))
    done = import_batch_run(batch_id=batch.pk)
    assert done is not None and done.status == ImportBatch.Status.FAILED
    assert [(e["line"], e["field"]) for e in done.errors] == [(2, field)]
    assert message in done.errors[0]["message"]
    assert Pair.objects.count() == 0


def test_top_level_nan_is_not_an_object() -> None:
    with pytest.raises(RecordError, match="expected a JSON object, got a number out of range"):
        parse_record("NaN")


def test_large_but_valid_values_still_import(project: Any, tmp_path: Path) -> None:
    record = {
        **GOOD,
        "id": 2**63 - 1,
        "metadata": {"deep": json.loads("[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)), "f": 2.5},
    }
    path = write_lines(tmp_path / "ok.jsonl", [json.dumps(record)])
    result = import_file(project=project, path=path)
    assert result.n_imported == 1
    pair = Pair.objects.get()
    assert pair.external_id == str(2**63 - 1) and pair.metadata["f"] == 2.5


def test_command_line_import_reports_the_line(project: Any, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "cli.jsonl", [good_line(1), BAD_LINES[0].values[0]])
    with pytest.raises(ImportValidationError, match="line 2, field 'prompt'"):
        import_file(project=project, path=path)
    assert Pair.objects.count() == 0
