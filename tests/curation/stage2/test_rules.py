"""The stage-2 filter rule (pure): keep / flip / discard on every edge of its conditions."""

from __future__ import annotations

import pytest

from curation.stage2.rules import (
    DISCARDED,
    FLIPPED,
    JUDGE_AGREE,
    JUDGE_DISAGREE,
    JUDGE_FAILED,
    JUDGE_NONE,
    JUDGE_TIE,
    KEPT,
    PAPER,
    STRICT,
    FilterConfig,
    decide,
    needs_judges,
)

STRICT_0 = FilterConfig(policy=STRICT)


def test_both_models_agree_keeps_the_label() -> None:
    d = decide(0.9, 0.8)
    assert d.outcome == KEPT and d.best_confirms and d.gold_agrees and not d.to_judges


def test_exactly_half_is_not_confirmation() -> None:
    d = decide(0.5, 0.9)
    assert d.to_judges and d.outcome == FLIPPED  # no judges: "best RM disagrees"
    assert decide(0.9, 0.5).outcome == FLIPPED  # gold at 0.5 does not agree


def test_gold_disagreeing_flips_even_when_best_confirms() -> None:
    assert decide(0.99, 0.2).outcome == FLIPPED


def test_judges_rescue_a_pair_the_best_model_doubts_only_if_gold_agrees() -> None:
    assert decide(0.3, 0.7, JUDGE_AGREE).outcome == KEPT
    assert decide(0.3, 0.4, JUDGE_AGREE).outcome == FLIPPED


@pytest.mark.parametrize("judges", [JUDGE_DISAGREE, JUDGE_TIE, JUDGE_FAILED, JUDGE_NONE])
def test_any_judge_answer_but_agree_counts_as_best_disagrees(judges: str) -> None:
    d = decide(0.3, 0.9, judges)
    assert d.outcome == FLIPPED and d.judges == judges


def test_judges_are_ignored_when_the_best_model_confirms() -> None:
    d = decide(0.9, 0.9, JUDGE_DISAGREE)
    assert d.outcome == KEPT and d.judges == JUDGE_NONE and not d.to_judges


def test_band_sends_near_threshold_pairs_to_judges() -> None:
    cfg = FilterConfig(band=0.1)
    assert needs_judges(0.6, cfg) and not needs_judges(0.6001, cfg)
    assert decide(0.55, 0.9, JUDGE_NONE, cfg).outcome == FLIPPED
    assert decide(0.55, 0.9, JUDGE_AGREE, cfg).outcome == KEPT


def test_strict_flips_only_when_both_say_reversed() -> None:
    assert decide(0.2, 0.3, config=STRICT_0).outcome == FLIPPED
    assert decide(0.2, 0.7, config=STRICT_0).outcome == DISCARDED  # gold agrees, best does not, no judges
    assert decide(0.9, 0.3, config=STRICT_0).outcome == DISCARDED  # best agrees, gold does not
    assert decide(0.5, 0.2, config=STRICT_0).outcome == DISCARDED  # exactly 0.5 is not "reversed"


def test_strict_margin() -> None:
    cfg = FilterConfig(policy=STRICT, flip_margin=0.2)
    assert decide(0.29, 0.1, config=cfg).outcome == FLIPPED
    assert decide(0.3, 0.1, config=cfg).outcome == DISCARDED
    assert decide(0.1, 0.3, config=cfg).outcome == DISCARDED


def test_paper_policy_never_discards() -> None:
    outcomes = {decide(b / 10, g / 10).outcome for b in range(11) for g in range(11)}
    assert outcomes == {KEPT, FLIPPED}


def test_strict_keeps_what_paper_keeps() -> None:
    for b in range(11):
        for g in range(11):
            paper = decide(b / 10, g / 10, config=FilterConfig(policy=PAPER)).outcome
            strict = decide(b / 10, g / 10, config=STRICT_0).outcome
            assert (paper == KEPT) == (strict == KEPT)


def test_other_threshold() -> None:
    cfg = FilterConfig(threshold=0.7)
    assert decide(0.71, 0.71, config=cfg).outcome == KEPT
    assert decide(0.69, 0.9, config=cfg).outcome == FLIPPED


@pytest.mark.parametrize(
    ("p_best", "p_gold", "judges", "message"),
    [
        (1.2, 0.5, JUDGE_NONE, "p_best"),
        (0.5, -0.1, JUDGE_NONE, "p_gold"),
        (float("nan"), 0.5, JUDGE_NONE, "p_best"),
        (True, 0.5, JUDGE_NONE, "p_best"),
        (0.5, 0.5, "maybe", "judges"),
    ],
)
def test_bad_inputs_are_named(p_best: float, p_gold: float, judges: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decide(p_best, p_gold, judges)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.0}, "threshold"),
        ({"band": -0.1}, "band"),
        ({"band": 0.5}, "band"),
        ({"policy": "lenient"}, "policy"),
        ({"flip_margin": 0.5}, "flip_margin"),
        ({"band": "x"}, "band"),
    ],
)
def test_bad_config_is_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FilterConfig(**kwargs)
