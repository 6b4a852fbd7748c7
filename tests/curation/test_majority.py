"""curation.majority: the one majority rule and the one "most common attribute" rule (pure, no database)."""

from __future__ import annotations

import itertools

import pytest

from curation.majority import Majority, attribute_mode, desired_majority, majority

AC, AS, BS, BC, U = "A_CLEARLY", "A_SLIGHTLY", "B_SLIGHTLY", "B_CLEARLY", "UNDECIDABLE"


@pytest.mark.parametrize(
    ("labels", "side", "strength"),
    [
        ([AC, AC, AC], "A", "clearly"),
        ([BC, BC, BS], "B", "clearly"),
        ([AC, AC, BS], "A", "clearly"),
        ([AC, AS, BC], "A", "slightly"),  # one clearly, one slightly: a strength tie is "slightly"
        ([AS, AS, AC], "A", "slightly"),
        ([AC, AC, U], "A", "clearly"),  # 2 of 3 is more than half
        ([AC, U, U], None, None),  # 1 A + 2 can't decide: no majority (the protocol sends it to a lead)
        ([BS, U, U], None, None),
        ([AC, BC, U], None, None),  # a tie between the sides
        ([AC, BC], None, None),
        ([AC, AS, BC, BS], None, None),  # 2 against 2
        ([AC, AC, BC, U], None, None),  # 2 of 4 is not more than half
        ([AC, AC, AS, BC, U], "A", "clearly"),  # 3 of 5
        ([U, U, U], None, None),  # all can't decide
        ([AC], "A", "clearly"),
        ([], None, None),
    ],
)
def test_majority(labels: list[str], side: str | None, strength: str | None) -> None:
    found = majority(labels)
    assert (found.side, found.strength) == (side, strength)
    assert found.preference == (None if side is None else f"{side}_{strength.upper()}")  # type: ignore[union-attr]
    assert found.n == len(labels)


def test_majority_counts_every_label() -> None:
    found = majority([AC, BS, AS, U, AC])
    assert found.votes == {"A": 3, "B": 1, "undecidable": 1}
    assert found.votes_for("A") == {"chosen": 3, "rejected": 1, "undecidable": 1}
    assert found.votes_for("B") == {"chosen": 1, "rejected": 3, "undecidable": 1}


@pytest.mark.parametrize("labels", list(itertools.product([AC, AS, BS, BC, U], repeat=3)))
def test_majority_does_not_depend_on_label_order_and_is_symmetric(labels: tuple[str, ...]) -> None:
    found = majority(labels)
    for permutation in itertools.permutations(labels):
        assert majority(permutation) == found
    swap = {AC: BC, AS: BS, BS: AS, BC: AC, U: U}
    mirrored = majority([swap[x] for x in labels])
    assert mirrored.strength == found.strength
    assert mirrored.side == {"A": "B", "B": "A", None: None}[found.side]


def test_majority_rejects_an_unknown_code_naming_it() -> None:
    with pytest.raises(ValueError, match="'C_CLEARLY'"):
        majority([AC, "C_CLEARLY"])
    with pytest.raises(ValueError, match="LEFT_CLEARLY"):
        majority(["LEFT_CLEARLY"])  # a shown answer is never a canonical code


def test_majority_without_votes_has_no_preference() -> None:
    assert Majority(None, None, {}).preference is None


@pytest.mark.parametrize(
    ("values", "mode"),
    [
        (["advice", "advice", "coding"], "advice"),
        (["advice", "coding", "math"], None),  # every value once: a tie
        (["advice", "coding"], None),
        (["coding", "advice", "advice", "coding"], None),  # a 2-2 tie, whatever the order
        (["advice", "advice", "coding", "coding", "math", "math", "math"], "math"),
        (["advice"], "advice"),
        (["", "advice", None], "advice"),  # blank values are not votes
        (["", None], None),
        ([], None),
    ],
)
def test_attribute_mode(values: list[str | None], mode: str | None) -> None:
    assert attribute_mode(values) == mode
    assert attribute_mode(list(reversed(values))) == mode


@pytest.mark.parametrize(
    ("selections", "kept"),
    [
        ([["helpfulness"], ["helpfulness", "safety"], []], ["helpfulness"]),
        ([["b", "a"], ["a", "b"], ["a"]], ["a", "b"]),
        ([["a"], ["b"]], []),  # one of two is not more than half
        ([["a", "a"], [], []], []),  # a label ticking twice still counts once
        ([], []),
    ],
)
def test_desired_majority(selections: list[list[str]], kept: list[str]) -> None:
    assert desired_majority(selections) == kept
