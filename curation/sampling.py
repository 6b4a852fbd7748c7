"""Error-driven retrieval planning (Skywork-Reward-V2, stage 1 step 4).

Pure module: no Django, no torch (STYLE.md section 1). For each human-verified pair the
current reward model gives ``p = sigmoid(r(x, y_w) - r(x, y_l))``, the probability that it
agrees with the human label. The worse the prediction, the more similar unverified pairs
are pulled in for labelling:

    k(p) = k_max               if p <= 0.5
    k(p) = ceil(k_max * (1-p)) otherwise        (k_max = 8 in the paper)

so p = 0.51 -> 4, p = 0.99 -> 1, p = 1.0 -> 0 with k_max = 8.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_K_MAX = 8
# k_max * (1 - p) is rounded to this many decimals before ceil(): 8 * (1 - 0.51) is
# 3.9200000000000004 in binary floating point and 10 * (1 - 0.9) is 0.9999999999999998;
# rounding removes such last-bit noise without changing any value that matters.
_ROUND_DECIMALS = 9


def _check_probability(p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, Real | np.floating | np.integer):
        raise ValueError(f"p must be a real number in [0, 1], got {p!r}")
    value = float(p)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"p must be a real number in [0, 1], got {p!r}")
    return value


def _check_k_max(k_max: Any) -> int:
    if isinstance(k_max, bool) or not isinstance(k_max, int | np.integer) or k_max < 0:
        raise ValueError(f"k_max must be a non-negative integer, got {k_max!r}")
    return int(k_max)


def preference_probability(r_chosen: npt.ArrayLike, r_rejected: npt.ArrayLike) -> np.ndarray:
    """p = sigmoid(r_chosen - r_rejected), element-wise, computed without overflow.

    Returns a float64 array broadcast from the inputs (a 0-d array for scalars).
    Raises ValueError if a reward is NaN.
    """
    margin = np.asarray(r_chosen, dtype=np.float64) - np.asarray(r_rejected, dtype=np.float64)
    if np.isnan(margin).any():
        raise ValueError("reward scores must not be NaN")
    # sigmoid(x) = exp(-logaddexp(0, -x)) never overflows for large |x|.
    return np.exp(-np.logaddexp(0.0, -margin))


def neighbours_for_probability(p: float, k_max: int = DEFAULT_K_MAX) -> int:
    """k(p): how many neighbours a verified pair with RM agreement probability ``p`` retrieves.

    ``k_max`` if ``p <= 0.5``, else ``ceil(k_max * (1 - p))`` (rounded to 9 decimals first
    so float noise cannot add one). Always in ``[0, k_max]``; 0 only at ``p == 1``.
    Raises ValueError naming ``p`` when it is not a number in [0, 1] (NaN included).
    """
    value = _check_probability(p)
    k = _check_k_max(k_max)
    if value <= 0.5:
        return k
    return math.ceil(round(k * (1.0 - value), _ROUND_DECIMALS))


@dataclass(frozen=True)
class RetrievalCandidate:
    """One unverified pair to label next.

    ``priority = 1 - p`` of the most mispredicted verified pair that retrieved it (higher is
    more urgent); ``source_pair_ids``: every verified pair that retrieved it, most
    mispredicted first; ``similarity``: the highest similarity to any of them.
    """

    candidate_id: Hashable
    priority: float
    source_pair_ids: tuple[Hashable, ...]
    similarity: float


def plan_retrieval(
    verified: Iterable[tuple[Hashable, float]],
    neighbours: Mapping[Hashable, Sequence[tuple[Hashable, float]]],
    k_max: int = DEFAULT_K_MAX,
    *,
    exclude: Iterable[Hashable] = (),
) -> list[RetrievalCandidate]:
    """Which unverified pairs to retrieve, deduplicated and ordered by priority.

    ``verified``: ``(pair_id, p)`` for each verified pair; ``neighbours[pair_id]``: its
    nearest pairs as ``(candidate_id, similarity)``, most similar first (e.g. from
    :meth:`curation.retrieval.VectorIndex.search`). A pair with no entry retrieves nothing.

    Each verified pair takes the first ``k(p)`` of its neighbours that are *eligible*:
    not a verified pair themselves and not in ``exclude`` (already labelled, queued or
    discarded). Ineligible neighbours are skipped, not counted, so a mispredicted pair still
    gets up to ``k(p)`` fresh candidates when its neighbour list is long enough.

    A candidate reached from several verified pairs appears once, with the highest
    priority. Order: priority desc, then similarity desc, then first appearance.
    Raises ValueError for a p outside [0, 1] or NaN (naming the value and the pair) and for
    a pair id listed twice in ``verified``.
    """
    k_max = _check_k_max(k_max)
    plan: list[tuple[Hashable, float]] = []
    seen: set[Hashable] = set()
    for pair_id, p in verified:
        try:
            value = _check_probability(p)
        except ValueError as exc:
            raise ValueError(f"verified pair {pair_id!r}: {exc}") from None
        if pair_id in seen:
            raise ValueError(f"verified pair {pair_id!r} is listed twice")
        seen.add(pair_id)
        plan.append((pair_id, value))

    blocked = seen | set(exclude)
    # candidate -> [priority, best similarity, first-seen rank, [(priority, source_rank, source)]]
    found: dict[Hashable, list[Any]] = {}
    for source_rank, (pair_id, p) in enumerate(plan):
        k = neighbours_for_probability(p, k_max)
        if k == 0:
            continue
        priority = 1.0 - p
        taken = 0
        for candidate_id, similarity in neighbours.get(pair_id, ()):
            if taken == k:
                break
            if candidate_id in blocked:
                continue
            taken += 1
            entry = found.get(candidate_id)
            if entry is None:
                found[candidate_id] = [priority, float(similarity), len(found), [(priority, source_rank, pair_id)]]
                continue
            entry[0] = max(entry[0], priority)
            entry[1] = max(entry[1], float(similarity))
            entry[3].append((priority, source_rank, pair_id))

    ordered = sorted(found.items(), key=lambda item: (-item[1][0], -item[1][1], item[1][2]))
    return [
        RetrievalCandidate(
            candidate_id=candidate_id,
            priority=priority,
            source_pair_ids=tuple(src for _, _, src in sorted(sources, key=lambda s: (-s[0], s[1]))),
            similarity=similarity,
        )
        for candidate_id, (priority, similarity, _, sources) in ordered
    ]
