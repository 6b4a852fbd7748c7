"""Evaluation metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from rewardmodel.ml.evaluate import best_of_n, evaluate_scores, pair_metrics


def test_accuracy_and_margin_overall_and_per_subset() -> None:
    m = pair_metrics([1.0, 2.0, 0.0, 5.0], [0.0, 3.0, 0.0, 1.0], ["a", "a", "b", None])
    assert m["n"] == 4
    assert m["accuracy"] == pytest.approx(2 / 4)  # the tie in "b" is wrong
    assert m["mean_margin"] == pytest.approx((1 - 1 + 0 + 4) / 4)
    assert m["per_subset"]["a"] == {"n": 2, "accuracy": 0.5, "mean_margin": 0.0}
    assert m["per_subset"]["b"]["accuracy"] == 0.0
    assert m["per_subset"]["default"] == {"n": 1, "accuracy": 1.0, "mean_margin": 4.0}


def test_empty_input_gives_nan_not_an_error() -> None:
    m = pair_metrics([], [])
    assert m["n"] == 0 and math.isnan(m["accuracy"])


def _group(prompt: str, winner: str, others: list[str]) -> list[dict]:
    return [{"prompt": prompt, "chosen": winner, "rejected": o} for o in others]


def test_best_of_n_counts_a_prompt_only_when_the_winner_tops_every_other_response() -> None:
    records = _group("p1", "w", ["a", "b", "c"]) + _group("p2", "w", ["a", "b", "c"])
    # p1: winner 3.0 beats 1, 2, 2.5 -> correct. p2: winner 3.0 but "c" scores 4.0 -> wrong,
    # although 2 of its 3 pairs are right.
    r_chosen = [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    r_rejected = [1.0, 2.0, 2.5, 1.0, 2.0, 4.0]
    out = best_of_n(records, r_chosen, r_rejected)
    assert out == {"best_of_n_accuracy": 0.5, "best_of_n_groups": 2, "best_of_n_skipped": 0}


def test_best_of_n_skips_groups_without_a_winner_and_ignores_single_pairs() -> None:
    cyclic = [
        {"prompt": "p", "chosen": "x", "rejected": "y"},
        {"prompt": "p", "chosen": "y", "rejected": "z"},
        {"prompt": "p", "chosen": "z", "rejected": "x"},
    ]
    single = [{"prompt": "q", "chosen": "u", "rejected": "v"}]
    out = best_of_n(cyclic + single, [1.0] * 4, [0.0] * 4)
    assert out["best_of_n_groups"] == 0 and out["best_of_n_skipped"] == 1
    assert math.isnan(out["best_of_n_accuracy"])


def test_best_of_n_groups_message_list_prompts_and_needs_a_full_win() -> None:
    msgs = [{"role": "user", "content": "hi"}]
    # "w" beats a and b; a beats b. w is the only response never rejected and beating all others.
    records = [
        {"prompt": msgs, "chosen": "w", "rejected": "a"},
        {"prompt": list(msgs), "chosen": "w", "rejected": "b"},
        {"prompt": msgs, "chosen": "a", "rejected": "b"},
    ]
    out = best_of_n(records, [2.0, 2.0, 1.0], [1.0, 0.5, 0.5])
    assert out["best_of_n_groups"] == 1 and out["best_of_n_accuracy"] == 1.0
    # tie between the winner and another response is a miss
    out = best_of_n(records, [2.0, 2.0, 2.0], [2.0, 0.5, 0.5])
    assert out["best_of_n_accuracy"] == 0.0


def test_evaluate_scores_combines_both() -> None:
    records = [{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "s"}]
    out = evaluate_scores(records, [1.0], [0.0])
    assert out["accuracy"] == 1.0 and out["per_subset"]["s"]["n"] == 1 and out["best_of_n_groups"] == 0
