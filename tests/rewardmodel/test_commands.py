from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from rewardmodel.models import ModelVersion, TrainingJob
from tests.rewardmodel.conftest import jsonl


def test_train_score_and_eval_from_the_command_line(
    db: Any, tiny_model_dir: Path, rm_records: list[dict[str, Any]], tmp_path: Path
) -> None:
    train = jsonl(tmp_path / "train.jsonl", rm_records[:32])
    gold = jsonl(tmp_path / "gold.jsonl", rm_records[32:])
    out = StringIO()
    call_command(
        "train_rm",
        "--data",
        str(train),
        "--eval",
        str(gold),
        "--base",
        str(tiny_model_dir),
        "--name",
        "cli",
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--max-length",
        "64",
        stdout=out,
    )
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    version = ModelVersion.objects.get(name=summary["model"])
    assert TrainingJob.objects.get().status == TrainingJob.Status.SUCCEEDED
    assert Path(version.path, "config.json").exists()

    scores = tmp_path / "scores.jsonl"
    call_command("score_pairs", "--model", version.name, "--data", str(gold), "--out", str(scores), stdout=StringIO())
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == 16 and all(0.0 <= row["p"] <= 1.0 for row in rows)

    out = StringIO()
    call_command("eval_rm", "--model", version.name, "--data", str(gold), stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[0].startswith("overall: accuracy") and any(line.strip().startswith("alpha:") for line in lines)
    result = json.loads(lines[-1])
    assert result["n"] == 16 and set(result["per_subset"]) == {"alpha", "beta"}


def test_command_errors_name_what_is_wrong(db: Any, tmp_path: Path, tiny_model_dir: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "chosen": "a", "rejected": "b"}\n{"prompt": "x"}\n')
    with pytest.raises(CommandError, match=r"bad.jsonl: line 2, field 'chosen': is missing"):
        call_command("train_rm", "--data", str(bad), "--base", str(tiny_model_dir))
    with pytest.raises(CommandError, match="no checkpoint directory"):
        call_command("eval_rm", "--model", "nope", "--data", str(_good(tmp_path)))
    with pytest.raises(CommandError, match="no such file"):
        call_command(
            "score_pairs",
            "--model",
            str(tiny_model_dir),
            "--data",
            str(tmp_path / "missing.jsonl"),
            "--out",
            str(tmp_path / "o"),
        )
    with pytest.raises(CommandError, match="not a Hugging Face checkpoint"):
        call_command("train_rm", "--data", str(_good(tmp_path)), "--base", str(tmp_path))
    assert TrainingJob.objects.count() == 0


def _good(tmp_path: Path) -> Path:
    return jsonl(
        tmp_path / "good.jsonl", [{"prompt": "\n\nHuman: hi\n\nAssistant:", "chosen": "hello", "rejected": "go away"}]
    )
