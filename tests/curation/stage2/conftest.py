"""Fixtures for stage 2: a pool of labelled pairs, a gold and a current-best model, stored scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotation.models import Pair, Project
from curation.models import PairScore
from rewardmodel.models import ModelVersion
from tests.factories import PairFactory


def make_models(project: Project, tmp_path: Path) -> tuple[ModelVersion, ModelVersion]:
    scope = f"project:{project.pk}"
    for name in ("gold", "best"):  # checkpoint directories as the registry keeps them (training may start from one)
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "config.json").write_text("{}")
    gold = ModelVersion.objects.create(
        name=f"gold-{project.pk}", scope=scope, base_model="x", path=str(tmp_path / "gold"), is_gold=True
    )
    best = ModelVersion.objects.create(
        name=f"best-{project.pk}", scope=scope, base_model="x", path=str(tmp_path / "best"), is_current_best=True
    )
    return gold, best


def store_scores(model: ModelVersion, margins: dict[int, float]) -> None:
    """r_a - r_b = margin for each pair (stored as if a previous run had scored it)."""
    PairScore.objects.bulk_create(
        PairScore(pair_id=pid, model_version=model, r_a=m / 2, r_b=-m / 2) for pid, m in margins.items()
    )


@pytest.fixture
def pool(project: Project, tmp_path: Path) -> dict[str, Any]:
    """12 pairs labelled A; gold and best margins chosen so each outcome of the paper rule occurs.

    pairs 0-5: both agree (kept); 6-7: best agrees, gold disagrees; 8-9: both disagree; 10-11: best
    disagrees, gold agrees.
    """
    pairs: list[Pair] = [
        PairFactory(project=project, source_label="A", source="src-x" if i % 2 else "src-y") for i in range(12)
    ]
    gold, best = make_models(project, tmp_path)
    best_m = [2.0] * 8 + [-2.0] * 4
    gold_m = [2.0] * 6 + [-2.0] * 4 + [2.0] * 2
    store_scores(best, {p.pk: m for p, m in zip(pairs, best_m, strict=True)})
    store_scores(gold, {p.pk: m for p, m in zip(pairs, gold_m, strict=True)})
    return {"pairs": pairs, "gold": gold, "best": best}
