"""Fixtures for the reward-model app tests: a tiny BERT reward model and small pair files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.rewardmodel.ml.conftest import corpus, make_records


@pytest.fixture(scope="session")
def rm_records() -> list[dict[str, Any]]:
    return make_records(48, seed=3)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, rm_records: list[dict[str, Any]]) -> Path:
    from rewardmodel.ml.backbones import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), corpus(rm_records))


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def tiny_base(settings: Any, tiny_model_dir: Path) -> str:
    """Register the tiny model as a configured base model and return its value for forms/services."""
    settings.RM_BASE_MODELS = [f"tiny={tiny_model_dir}"]
    return str(tiny_model_dir)
