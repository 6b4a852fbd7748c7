"""The judges' interface: answers to agree/disagree/tie/failed, and no judges meaning "not confirmed"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from curation.stage2 import judging, rules


@dataclass
class Answer:
    result: str


@pytest.mark.parametrize(
    ("answer", "label", "expected"),
    [
        ("A", "A", rules.JUDGE_AGREE),
        ("b", "A", rules.JUDGE_DISAGREE),
        (Answer("B"), "B", rules.JUDGE_AGREE),
        (Answer("tie"), "A", rules.JUDGE_TIE),
        (Answer("failed"), "A", rules.JUDGE_FAILED),
        ("garbage", "A", rules.JUDGE_FAILED),
        (None, "A", rules.JUDGE_NONE),
    ],
)
def test_answers_map_to_outcomes(answer: Any, label: str, expected: str) -> None:
    assert judging.to_outcome(answer, label) == expected


def test_no_judge_function_means_none_for_every_pair(settings: Any) -> None:
    settings.STAGE2_JUDGE_FUNCTION = "curation.stage2.no_such_module.judge_pairs"
    assert judging.judge_function() is None
    assert judging.judge_outcomes({1: "A", 2: "B"}) == {1: rules.JUDGE_NONE, 2: rules.JUDGE_NONE}


def test_a_pair_the_judges_skipped_is_none() -> None:
    assert judging.judge_outcomes({1: "A", 2: "B"}, function=lambda ids: {1: "A"}) == {
        1: rules.JUDGE_AGREE,
        2: rules.JUDGE_NONE,
    }


def test_nothing_asked_calls_nothing() -> None:
    def boom(ids: Any) -> Any:
        raise AssertionError("called")

    assert judging.judge_outcomes({}, function=boom) == {}
