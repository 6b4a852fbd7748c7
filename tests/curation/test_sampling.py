"""Error-driven retrieval rule k(p) and the retrieval plan (pure module, no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curation.sampling import (
    RetrievalCandidate,
    neighbours_for_probability,
    plan_retrieval,
    preference_probability,
)


@pytest.mark.parametrize(
    ("p", "k"),
    [
        (0.0, 8),
        (0.3, 8),
        (0.5, 8),  # boundary: p <= 0.5 takes k_max
        (0.51, 4),  # ceil(8 * 0.49) = ceil(3.92); 8 * (1 - 0.51) is 3.9200000000000004 in floats
        (0.75, 2),  # 8 * 0.25 = 2 exactly
        (0.875, 1),  # 8 * 0.125 = 1 exactly
        (0.876, 1),
        (0.874, 2),
        (0.99, 1),  # ceil(0.08)
        (1.0, 0),
        (np.float32(0.75), 2),
        (1, 0),
    ],
)
def test_k_at_the_edges(p: float, k: int) -> None:
    assert neighbours_for_probability(p) == k


def test_k_is_robust_to_float_noise() -> None:
    # 10 * (1 - 0.9) = 0.9999999999999998 and 5 * (1 - 0.8) = 0.9999999999999998: both exactly 1.
    assert neighbours_for_probability(0.9, k_max=10) == 1
    assert neighbours_for_probability(0.8, k_max=5) == 1
    # 10 * (1 - 0.7) = 3.0000000000000004 would ceil to 4 without rounding.
    assert neighbours_for_probability(0.7, k_max=10) == 3
    for k_max in (1, 3, 8, 16):
        ks = [neighbours_for_probability(p, k_max) for p in np.linspace(0, 1, 1001)]
        assert all(a >= b for a, b in zip(ks, ks[1:], strict=False)), "k(p) must be non-increasing"
        assert ks[0] == k_max and ks[-1] == 0


@pytest.mark.parametrize("p", [-0.01, 1.0000001, float("nan"), float("inf"), "0.5", None, True])
def test_invalid_p_is_rejected_by_value(p: object) -> None:
    with pytest.raises(ValueError, match=repr(p) if not isinstance(p, float) else "nan|inf|-0.01|1.0000001"):
        neighbours_for_probability(p)  # type: ignore[arg-type]


def test_invalid_k_max_is_rejected() -> None:
    with pytest.raises(ValueError, match="k_max"):
        neighbours_for_probability(0.2, k_max=-1)


def test_preference_probability_is_a_stable_sigmoid() -> None:
    p = preference_probability([0.0, 2.0, 1000.0, -1000.0], [0.0, 0.0, 0.0, 0.0])
    assert p[0] == pytest.approx(0.5)
    assert p[1] == pytest.approx(1 / (1 + math.exp(-2)))
    assert p[2] == 1.0 and p[3] == 0.0
    with pytest.raises(ValueError, match="NaN"):
        preference_probability([float("nan")], [0.0])


def _neighbours() -> dict[int, list[tuple[int, float]]]:
    return {
        1: [
            (1, 1.0),
            (101, 0.9),
            (102, 0.8),
            (2, 0.7),
            (103, 0.6),
            (104, 0.5),
            (105, 0.4),
            (106, 0.3),
            (107, 0.2),
            (108, 0.1),
        ],
        2: [(201, 0.95), (101, 0.85), (202, 0.75)],
        3: [(102, 0.99), (301, 0.9)],
        4: [(401, 0.9)],
    }


def test_plan_takes_k_eligible_neighbours_per_pair() -> None:
    only_one = plan_retrieval([(1, 0.2)], _neighbours())
    assert [c.candidate_id for c in only_one] == [101, 102, 2, 103, 104, 105, 106, 107]
    # With pair 2 verified too (p=1: retrieves nothing itself), 1 and 2 are skipped, not counted.
    plan = plan_retrieval([(1, 0.2), (2, 1.0)], _neighbours())
    assert [c.candidate_id for c in plan] == [101, 102, 103, 104, 105, 106, 107, 108]
    assert all(c.priority == pytest.approx(0.8) and c.source_pair_ids == (1,) for c in plan)


def test_plan_skips_verified_and_excluded_candidates() -> None:
    plan = plan_retrieval([(1, 0.2), (2, 0.4)], _neighbours(), exclude={103, 201})
    ids = [c.candidate_id for c in plan]
    assert 1 not in ids and 2 not in ids and 103 not in ids and 201 not in ids
    assert len(ids) == len(set(ids))


def test_plan_dedups_with_the_highest_priority_and_all_sources() -> None:
    # 101 is reached from pair 1 (p=0.9 -> k=1, priority 0.1) and pair 2 (p=0.3 -> k=8, priority 0.7).
    plan = plan_retrieval([(1, 0.9), (2, 0.3)], _neighbours())
    by_id = {c.candidate_id: c for c in plan}
    assert by_id[101] == RetrievalCandidate(101, pytest.approx(0.7), (2, 1), 0.9)
    assert [c.candidate_id for c in plan] == [201, 101, 202]


def test_plan_orders_by_priority_then_similarity() -> None:
    plan = plan_retrieval([(3, 0.6), (4, 0.1), (1, 0.99)], _neighbours())
    # pair 4: priority 0.9, k=8 -> 401; pair 3: priority 0.4, k=ceil(3.2)=4 -> 102, 301;
    # pair 1: priority 0.01, k=1 -> 101 (102 is already planned but gets only this pair's lower priority).
    assert [(c.candidate_id, round(c.priority, 6)) for c in plan] == [(401, 0.9), (102, 0.4), (301, 0.4), (101, 0.01)]
    priorities = [c.priority for c in plan]
    assert priorities == sorted(priorities, reverse=True)


def test_plan_at_p_one_retrieves_nothing_and_half_retrieves_k_max() -> None:
    assert plan_retrieval([(1, 1.0)], _neighbours()) == []
    assert len(plan_retrieval([(1, 0.5)], _neighbours())) == 8
    assert len(plan_retrieval([(1, 0.51)], _neighbours())) == 4
    assert len(plan_retrieval([(1, 0.99)], _neighbours())) == 1
    assert len(plan_retrieval([(1, 0.5)], _neighbours(), k_max=3)) == 3


def test_plan_handles_pairs_without_neighbours() -> None:
    assert plan_retrieval([(99, 0.0)], _neighbours()) == []


def test_plan_rejects_invalid_p_naming_pair_and_value() -> None:
    with pytest.raises(ValueError, match=r"pair 3.*1\.5"):
        plan_retrieval([(1, 0.2), (3, 1.5)], _neighbours())
    with pytest.raises(ValueError, match=r"pair 3.*nan"):
        plan_retrieval([(3, float("nan"))], _neighbours())


def test_plan_rejects_a_pair_listed_twice() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        plan_retrieval([(1, 0.2), (1, 0.3)], _neighbours())
