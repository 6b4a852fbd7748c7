"""Reward-model evaluation: pair accuracy overall and per subset, mean margin, and best-of-N accuracy.

Definitions (pairs ``(x, y_w, y_l)`` with rewards ``r_w = r(x, y_w)``, ``r_l = r(x, y_l)``):

* **accuracy** = fraction of pairs with ``r_w > r_l`` strictly (a tie is wrong: a constant model scores 0, not
  0.5);
* **mean_margin** = mean of ``r_w - r_l``;
* **per_subset** = the same two figures restricted to each value of the records' ``subset`` (missing subset ->
  ``"default"``);
* **best-of-N accuracy**: pairs are grouped by prompt (the exact prompt string, or the JSON of the message list).
  For a group, let R be its set of distinct responses (by exact text) and N = |R|. Its *winner* is the response
  that is the chosen side of a pair against **every** other response in R and never the rejected side of any pair
  in the group (RewardBench-2 best-of-4 groups, one chosen vs N-1 rejected, have one). A group is *eligible* when
  N >= ``min_responses`` (default 3; N = 2 is plain pair accuracy) and it has a winner. A response's reward is the
  mean over the pairs it appears in (equal in exact arithmetic; averaging absorbs padding-level float noise).
  best-of-N accuracy = (eligible groups whose winner's reward is strictly greater than every other response's
  reward) / (eligible groups). Groups with N >= ``min_responses`` but no winner (e.g. cyclic or incomplete
  preferences) are counted in ``best_of_n_skipped``; smaller groups are simply not best-of-N groups.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_SUBSET = "default"


def pair_metrics(
    r_chosen: Sequence[float] | np.ndarray,
    r_rejected: Sequence[float] | np.ndarray,
    subsets: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Accuracy and mean margin, overall and per subset.

    Args:
        r_chosen, r_rejected: (N,) rewards.
        subsets: (N,) subset names (None -> ``"default"``) or None for no breakdown beyond ``default``.

    Returns:
        ``{"n", "accuracy", "mean_margin", "per_subset": {name: {"n", "accuracy", "mean_margin"}}}``; with N = 0 the
        accuracy and margin are NaN.
    """
    rc = np.asarray(r_chosen, dtype=np.float64)
    rr = np.asarray(r_rejected, dtype=np.float64)
    if rc.shape != rr.shape:
        raise ValueError("r_chosen and r_rejected differ in shape")
    diff = rc - rr
    names = [s or DEFAULT_SUBSET for s in (subsets if subsets is not None else [None] * len(diff))]
    if len(names) != len(diff):
        raise ValueError("subsets and rewards differ in length")
    per: dict[str, Any] = {}
    for name in sorted(set(names)):
        mask = np.array([s == name for s in names], dtype=bool)
        per[name] = _summary(diff[mask])
    return {**_summary(diff), "per_subset": per}


def _summary(diff: np.ndarray) -> dict[str, Any]:
    """n, accuracy (strict), mean margin of an array of reward differences."""
    n = int(diff.size)
    if n == 0:
        return {"n": 0, "accuracy": float("nan"), "mean_margin": float("nan")}
    return {"n": n, "accuracy": float((diff > 0).mean()), "mean_margin": float(diff.mean())}


def prompt_key(prompt: Any) -> str:
    """Grouping key of a prompt: the string itself, or canonical JSON of a message list."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def best_of_n(
    records: Sequence[dict[str, Any]],
    r_chosen: Sequence[float] | np.ndarray,
    r_rejected: Sequence[float] | np.ndarray,
    min_responses: int = 3,
) -> dict[str, Any]:
    """Best-of-N accuracy as defined in the module docstring.

    Returns ``{"best_of_n_accuracy": float (NaN when no group is eligible), "best_of_n_groups": eligible count,
    "best_of_n_skipped": groups large enough but without a winner}``.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        groups[prompt_key(r["prompt"])].append(i)
    correct = eligible = skipped = 0
    for idx in groups.values():
        scores: dict[str, list[float]] = defaultdict(list)
        beats: dict[str, set[str]] = defaultdict(set)
        losers: set[str] = set()
        for i in idx:
            w, lo = records[i]["chosen"], records[i]["rejected"]
            scores[w].append(float(r_chosen[i]))
            scores[lo].append(float(r_rejected[i]))
            beats[w].add(lo)
            losers.add(lo)
        responses = set(scores)
        winners = [w for w in beats if w not in losers and beats[w] == responses - {w}]
        if len(responses) < min_responses:
            continue
        if len(winners) != 1:
            skipped += 1
            continue
        eligible += 1
        mean = {resp: float(np.mean(v)) for resp, v in scores.items()}
        w = winners[0]
        if all(mean[w] > mean[o] for o in responses if o != w):
            correct += 1
    return {
        "best_of_n_accuracy": correct / eligible if eligible else float("nan"),
        "best_of_n_groups": eligible,
        "best_of_n_skipped": skipped,
    }


def evaluate_scores(
    records: Sequence[dict[str, Any]],
    r_chosen: Sequence[float] | np.ndarray,
    r_rejected: Sequence[float] | np.ndarray,
    min_responses: int = 3,
) -> dict[str, Any]:
    """All metrics from precomputed rewards: :func:`pair_metrics` (with the records' subsets) + :func:`best_of_n`."""
    out = pair_metrics(r_chosen, r_rejected, [r.get("subset") for r in records])
    out.update(best_of_n(records, r_chosen, r_rejected, min_responses))
    return out


def evaluate(
    scorer_or_path: Any,
    records: Sequence[dict[str, Any]],
    min_responses: int = 3,
    **scorer_kwargs: Any,
) -> dict[str, Any]:
    """Score ``records`` and return :func:`evaluate_scores`'s metrics.

    Args:
        scorer_or_path: a :class:`rewardmodel.ml.infer.Scorer` (or anything with ``score_pairs``), or a checkpoint
            directory to load one from (``scorer_kwargs`` are passed to ``Scorer.from_pretrained``).
        records: pair dicts (``prompt``, ``chosen``, ``rejected``, optional ``subset``).
    """
    if hasattr(scorer_or_path, "score_pairs"):
        scorer = scorer_or_path
    else:
        from rewardmodel.ml.infer import Scorer

        scorer = Scorer.from_pretrained(scorer_or_path, **scorer_kwargs)
    scores = scorer.score_pairs(records)
    return evaluate_scores(records, scores["r_chosen"], scores["r_rejected"], min_responses)
