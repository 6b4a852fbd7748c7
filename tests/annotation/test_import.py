from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from annotation.formats import RecordError, parse_record, parse_transcript, to_transcript
from annotation.importing import ImportValidationError
from annotation.models import ImportBatch, Pair
from annotation.services import import_batch_run, import_file
from tests.conftest import DEMO_FILE, write_jsonl

GOOD = {"prompt": "\n\nHuman: What is 2+2?\n\nAssistant:", "chosen": "4", "rejected": "5"}


def line(**changes: Any) -> str:
    record = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return json.dumps(record)


def test_parse_transcript_multi_turn_drops_trailing_assistant() -> None:
    text = "\n\nHuman: hi\n\nAssistant: hello there\n\nHuman: bye?\n\nAssistant:"
    assert parse_transcript(text) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello there"},
        {"role": "user", "content": "bye?"},
    ]
    assert parse_transcript(to_transcript(parse_transcript(text))) == parse_transcript(text)


def test_parse_record_accepts_messages_and_unlabelled_responses() -> None:
    record = parse_record(
        json.dumps(
            {
                "prompt": [{"role": "system", "content": "Be brief."}, {"role": "human", "content": "Hi"}],
                "response_a": "Hello",
                "response_b": "Hey",
                "id": 7,
            }
        )
    )
    assert record.conversation[1] == {"role": "user", "content": "Hi"}
    assert (record.response_a, record.response_b, record.source_label, record.external_id) == ("Hello", "Hey", "", "7")


def test_same_pair_in_either_order_has_one_hash() -> None:
    a = parse_record(line())
    b = parse_record(json.dumps({"prompt": GOOD["prompt"], "response_a": "5", "response_b": "4"}))
    assert a.content_hash == b.content_hash


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ('{"prompt": "x", ', "", "invalid JSON"),
        ("[1, 2]", "", "expected a JSON object"),
        (line(prompt=...), "prompt", "is missing"),
        (line(chosen=...), "chosen", "is missing"),
        (line(rejected="   "), "rejected", "is empty"),
        (line(chosen=3), "chosen", "must be a string"),
        (line(prompt=42), "prompt", "must be a string or a list"),
        (line(prompt=[{"role": "user", "content": 1}]), "prompt[0].content", "must be a string"),
        (line(prompt=[{"role": "robot", "content": "x"}]), "prompt[0].role", "must be one of"),
        (line(rejected="4"), "rejected", "identical"),
        (line(metadata=[1]), "metadata", "must be an object"),
        (
            json.dumps({"prompt": "Hi", "chosen": "a", "rejected": "b", "response_a": "c", "response_b": "d"}),
            "",
            "not both",
        ),
    ],
)
def test_each_bad_record_names_its_field(text: str, field: str, message: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_record(text)
    assert info.value.field == field
    assert message in info.value.message


def test_imports_real_pairs(project: Any, demo_slice: Path) -> None:
    result = import_file(project=project, path=demo_slice)
    assert (result.n_lines, result.n_imported, result.n_duplicates) == (20, 20, 0)
    pair = Pair.objects.filter(project=project).order_by("id").first()
    first = json.loads(demo_slice.read_text().splitlines()[0])
    assert pair.response_a == first["chosen"] and pair.source_label == "A"
    assert pair.external_id == first["id"] and pair.subset == first["subset"]
    assert pair.conversation[-1]["role"] == "user"
    assert ImportBatch.objects.get(pk=result.batch_id).status == ImportBatch.Status.DONE


def test_duplicates_are_skipped_and_counted(project: Any, demo_slice: Path, tmp_path: Path) -> None:
    import_file(project=project, path=demo_slice)
    lines = demo_slice.read_text().splitlines()
    swapped = json.loads(lines[0])
    swapped["chosen"], swapped["rejected"] = swapped["rejected"], swapped["chosen"]
    again = write_jsonl(tmp_path / "again.jsonl", [*lines[:5], json.dumps(swapped), line(), line()])
    result = import_file(project=project, path=again)
    assert (result.n_lines, result.n_imported, result.n_duplicates) == (8, 1, 7)
    assert Pair.objects.filter(project=project).count() == 21


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("not json at all", ""),
        (line(chosen=...), "chosen"),
        (line(chosen=""), "chosen"),
        (line(prompt={"a": 1}), "prompt"),
        (line(chosen="same", rejected="same"), "rejected"),
    ],
)
def test_bad_line_imports_nothing_and_names_line_and_field(project: Any, tmp_path: Path, bad: str, field: str) -> None:
    good = DEMO_FILE.read_text().splitlines()[:10]
    path = write_jsonl(tmp_path / "bad.jsonl", [*good[:6], bad, *good[6:]])
    batches_before = ImportBatch.objects.count()
    with pytest.raises(ImportValidationError) as info:
        import_file(project=project, path=path)
    assert [(e.line, e.field) for e in info.value.errors] == [(7, field)]
    assert "line 7" in str(info.value) and "bad.jsonl" in str(info.value)
    assert Pair.objects.count() == 0
    assert ImportBatch.objects.count() == batches_before


def test_every_bad_line_is_reported(project: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [line(), "{", line(chosen=1), line(rejected=...)])
    with pytest.raises(ImportValidationError) as info:
        import_file(project=project, path=path)
    assert [(e.line, e.field) for e in info.value.errors] == [(2, ""), (3, "chosen"), (4, "rejected")]


def test_not_utf8_is_an_error(project: Any, tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(line().encode() + b"\n" + '{"prompt": "caf\xe9"}'.encode("latin-1") + b"\n")
    with pytest.raises(ImportValidationError, match="UTF-8"):
        import_file(project=project, path=path)
    assert Pair.objects.count() == 0


def test_empty_file_is_an_error(project: Any, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "empty.jsonl", ["", "  "])
    with pytest.raises(ImportValidationError, match="no records"):
        import_file(project=project, path=path)


def test_worker_import_of_bad_upload_fails_cleanly(project: Any, tmp_path: Path, settings: Any) -> None:
    path = write_jsonl(tmp_path / "up.jsonl", [line(), line(chosen=None)])
    batch = ImportBatch.objects.create(project=project, filename="up.jsonl", path=str(path))
    done = import_batch_run(batch_id=batch.pk)
    assert done is not None and done.status == ImportBatch.Status.FAILED
    assert done.errors == [{"line": 2, "field": "chosen", "message": "must be a string, got NoneType"}]
    assert Pair.objects.count() == 0
    assert not path.exists()
    assert import_batch_run(batch_id=batch.pk) is None  # a redelivered task does nothing


def test_import_command(project: Any, demo_slice: Path, tmp_path: Path) -> None:
    call_command("import_pairs", str(demo_slice), "--project", project.name)
    assert Pair.objects.filter(project=project).count() == 20
    bad = write_jsonl(tmp_path / "bad.jsonl", [line(prompt=...)])
    with pytest.raises(CommandError, match=r"bad.jsonl: line 1, field 'prompt': is missing"):
        call_command("import_pairs", str(bad), "--project", project.name)
    with pytest.raises(CommandError, match="no project named"):
        call_command("import_pairs", str(demo_slice), "--project", "nope")
