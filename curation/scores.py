"""Reward-model scores of pairs: what a model version predicts for each pair (:class:`PairScore`).

Written by curation rounds and stage 2 (:func:`pair_scores_store`); read by the dispute review and
the lead's browser (:func:`pair_prediction`, the current-best model's view of a pair).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from annotation.models import Pair, Project
from curation.models import SCORE_MAX_LENGTH, PairScore, VerifiedPair

STORE_CHUNK = 1000


# --- writes --------------------------------------------------------------------------------------


def pair_scores_store(
    *, model_version_id: int, scores: Iterable[tuple[int, float, float]], max_length: int | None = None
) -> int:
    """Store ``(pair_id, r_a, r_b)`` scores of one model version (replacing earlier ones).

    ``p`` is computed against each pair's verified label (null for unverified pairs). ``max_length``: the tokens
    per sequence they were scored with (None: the scorer's default). Returns the number of rows written.
    """
    length = SCORE_MAX_LENGTH if max_length is None else int(max_length)
    from curation.sampling import preference_probability

    written = 0
    batch: list[tuple[int, float, float]] = []

    def flush(rows: list[tuple[int, float, float]]) -> int:
        sides = dict(VerifiedPair.objects.filter(pair_id__in=[r[0] for r in rows]).values_list("pair_id", "side"))
        objects = []
        for pair_id, r_a, r_b in rows:
            side = sides.get(pair_id)
            p = None
            if side is not None:
                chosen, rejected = (r_a, r_b) if side == "A" else (r_b, r_a)
                p = float(preference_probability(chosen, rejected))
            objects.append(
                PairScore(pair_id=pair_id, model_version_id=model_version_id, r_a=r_a, r_b=r_b, p=p, max_length=length)
            )
        PairScore.objects.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=["pair", "model_version"],
            update_fields=["r_a", "r_b", "p", "max_length", "scored_at"],
        )
        return len(objects)

    with transaction.atomic():
        for item in scores:
            batch.append((int(item[0]), float(item[1]), float(item[2])))
            if len(batch) >= STORE_CHUNK:
                written += flush(batch)
                batch = []
        if batch:
            written += flush(batch)
    return written


# --- reads ---------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """The current-best reward model's view of a pair."""

    model_name: str
    model_version_id: int
    r_a: float
    r_b: float
    p_a: float
    p: float | None
    scored_at: datetime


def model_version_current_best(project: Project) -> Any:
    """The project's current-best reward model (scope ``project:<id>``), or None."""
    from rewardmodel.selectors import model_version_get_current_best

    return model_version_get_current_best(f"project:{project.pk}")


def pair_prediction(project: Project, pair: Pair) -> Prediction | None:
    """The stored score of ``pair`` by the current-best model, if a round has scored it."""
    version = model_version_current_best(project)
    if version is None:
        return None
    score = PairScore.objects.filter(pair=pair, model_version_id=version.pk).first()
    if score is None:
        return None
    return Prediction(version.name, version.pk, score.r_a, score.r_b, score.p_a, score.p, score.scored_at)
