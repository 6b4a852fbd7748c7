"""Self-consistency voting, both orders, position bias and agreement (pure)."""

from __future__ import annotations

import pytest

from curation.judges.voting import (
    FAILED,
    TIE,
    Outcome,
    Vote,
    agreement,
    combine_orders,
    judge_vote,
    panel_vote,
    position_bias,
)


def votes(*sides: str, strength: str = "clearly") -> list[Vote]:
    return [Vote(s, strength if s in ("A", "B") else "") for s in sides]


def test_majority_within_a_judge_with_its_strength() -> None:
    out = judge_vote([Vote("A", "clearly"), Vote("A", "clearly"), Vote("B", "slightly")])
    assert (out.result, out.strength, out.counts) == ("A", "clearly", {"A": 2, "B": 1})


def test_even_split_is_a_tie_never_a_side() -> None:
    out = judge_vote(votes("A", "B"))
    assert out.result == TIE and out.reason == "samples split evenly" and out.strength == ""


def test_judge_saying_tie_is_a_tie() -> None:
    assert judge_vote(votes("tie", "tie", "A")).result == TIE


def test_too_few_readable_samples_fail_the_judge() -> None:
    out = judge_vote(votes("A", FAILED, FAILED))
    assert out.result == FAILED and "1 of 3 samples readable" in out.reason
    assert judge_vote(votes("A", "A", FAILED)).result == "A"  # 2 of 3 is a quorum
    assert judge_vote([]).result == FAILED


def test_strength_split_is_the_weaker_claim() -> None:
    out = judge_vote([Vote("B", "clearly"), Vote("B", "slightly")])
    assert (out.result, out.strength) == ("B", "slightly")
    assert judge_vote([Vote("B")]).strength == "slightly"  # none given


def test_both_orders_must_agree() -> None:
    a, b = Outcome("A", "clearly"), Outcome("B", "clearly")
    assert combine_orders(a, Outcome("A", "slightly")).result == "A"
    assert combine_orders(a, Outcome("A", "slightly")).strength == "slightly"
    assert combine_orders(a, Outcome("A", "clearly")).strength == "clearly"
    disagree = combine_orders(a, b)
    assert disagree.result == TIE and disagree.reason == "the orders disagree"
    assert combine_orders(a, Outcome(TIE)).result == TIE
    assert combine_orders(a, Outcome(FAILED)).result == FAILED


def test_panel_majority_with_abstaining_failures() -> None:
    out = panel_vote([Outcome("A", "clearly"), Outcome("A", "slightly"), Outcome("B", "clearly"), Outcome(FAILED)])
    assert out.result == "A" and out.counts == {"A": 2, "B": 1, FAILED: 1}
    assert panel_vote([Outcome("A", "clearly"), Outcome("B", "clearly")]).result == TIE
    assert panel_vote([Outcome(FAILED), Outcome(FAILED)]).result == FAILED
    assert panel_vote([]).result == FAILED
    assert panel_vote([Outcome(FAILED), Outcome("B", "slightly")]).result == "B"


def test_vote_rejects_unknown_side() -> None:
    with pytest.raises(ValueError, match="a vote's side"):
        Vote("C")


def test_position_bias_counts_pairs_whose_winner_follows_the_position() -> None:
    answers = [
        (1, "AB", "1"), (1, "BA", "1"),  # position 1 both times: follows position
        (2, "AB", "1"), (2, "BA", "2"),  # the same side (A) both times: consistent
        (3, "AB", "2"), (3, "BA", "1"),  # consistent (B)
        (4, "AB", "1"),  # one order only: not counted as a pair
        (5, "AB", "tie"), (5, "BA", "2"),  # neither
    ]  # fmt: skip
    bias = position_bias(answers)
    assert bias.n_pairs == 4
    assert bias.follows_position == pytest.approx(1 / 4)
    assert bias.consistent == pytest.approx(2 / 4)
    assert bias.first_rate == pytest.approx(5 / 8) and bias.n_answers == 8


def test_position_bias_of_nothing_is_undefined() -> None:
    bias = position_bias([])
    assert (bias.n_pairs, bias.follows_position, bias.first_rate) == (0, None, None)


def test_agreement_accuracy_and_kappa() -> None:
    rows = [("A", "A"), ("A", "A"), ("B", "B"), ("B", "A"), (TIE, "A"), (FAILED, "B")]
    found = agreement(rows)
    assert found.n == 6 and found.n_decided == 4 and found.coverage == pytest.approx(4 / 6)
    assert found.accuracy == pytest.approx(3 / 4)
    # p_o = .75; judge A = .5, human A = .75: p_e = .5*.75 + .5*.25 = .5; kappa = .25/.5
    assert found.kappa == pytest.approx(0.5)


def test_kappa_is_undefined_when_everyone_says_one_side() -> None:
    found = agreement([("A", "A"), ("A", "A")])
    assert found.accuracy == 1.0 and found.kappa is None
    assert agreement([]).accuracy is None
    with pytest.raises(ValueError, match="human label must be A or B"):
        agreement([("A", "tie")])


def test_wilson_intervals_match_the_textbook_values() -> None:
    from curation.judges.voting import wilson_interval

    low, high = wilson_interval(3, 4)
    assert (low, high) == (pytest.approx(0.3006, abs=1e-4), pytest.approx(0.9544, abs=1e-4))
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="between 0 and n=3"):
        wilson_interval(4, 3)
    assert agreement([("A", "A"), ("A", "A"), ("B", "B"), ("B", "A")]).accuracy_ci == wilson_interval(3, 4)
    assert agreement([(TIE, "A")]).accuracy_ci is None
