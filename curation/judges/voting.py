"""Self-consistency voting, both-orders judging, position bias and agreement with humans (pure).

Every function takes plain values and returns an :class:`Outcome` whose ``result`` is one of
:data:`RESULTS`: ``A`` or ``B`` (a decided side), ``tie`` (the votes do not settle it, or the
judge said the candidates are equal) or ``failed`` (too few readable answers). A tie or a failure
is never turned into a side.

Rules:

- within a judge (:func:`judge_vote`): each sample is ``A``, ``B``, ``tie`` or failed. If fewer
  than ``quorum`` (default: more than half) of the samples are readable, the judge ``failed``.
  Otherwise the most frequent of A / B / tie wins; equal top counts give ``tie``.
- both orders (:func:`combine_orders`): the judge's vote in each order; both must be decided and
  agree, else ``tie`` (MT-Bench's rule), and a failure in either order is ``failed``.
- across judges (:func:`panel_vote`): failed judges abstain; the most frequent of A / B / tie among
  the rest wins; equal top counts give ``tie``; no judge left gives ``failed``.
- strength: the most frequent strength among the votes for the winning side; an even split, or
  votes that gave none, is ``slightly`` (the weaker claim), and that is recorded as such.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from annotation.preference import CLEARLY, SLIGHTLY, A, B

TIE = "tie"
FAILED = "failed"
RESULTS = (A, B, TIE, FAILED)
DECIDED = (A, B)


@dataclass(frozen=True)
class Vote:
    """One readable or failed answer: ``side`` is A, B, tie, or failed; ``strength`` may be empty."""

    side: str
    strength: str = ""

    def __post_init__(self) -> None:
        if self.side not in RESULTS:
            raise ValueError(f"a vote's side must be one of {', '.join(RESULTS)}, got {self.side!r}")


@dataclass(frozen=True)
class Outcome:
    """The result of a vote, with the counts it came from and why, when it is not a decided side."""

    result: str
    strength: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def decided(self) -> bool:
        return self.result in DECIDED

    def as_dict(self) -> dict[str, object]:
        return {"result": self.result, "strength": self.strength, "counts": dict(self.counts), "reason": self.reason}


def _strength_of(votes: Iterable[Vote], side: str) -> str:
    found = Counter(v.strength for v in votes if v.side == side and v.strength in (CLEARLY, SLIGHTLY))
    if found[CLEARLY] > found[SLIGHTLY]:
        return CLEARLY
    return SLIGHTLY


def _plurality(votes: Sequence[Vote]) -> tuple[str, dict[str, int]]:
    counts = Counter(v.side for v in votes if v.side != FAILED)
    ranked = counts.most_common()
    top = ranked[0][1]
    leaders = [side for side, n in ranked if n == top]
    return (leaders[0] if len(leaders) == 1 else TIE), {k: counts[k] for k in (A, B, TIE) if counts[k]}


def judge_vote(votes: Sequence[Vote], quorum: int | None = None) -> Outcome:
    """Majority of one judge's samples (see the module docstring). ``quorum``: readable samples needed."""
    if not votes:
        return Outcome(FAILED, reason="no samples")
    need = quorum if quorum is not None else len(votes) // 2 + 1
    readable = [v for v in votes if v.side != FAILED]
    failed = len(votes) - len(readable)
    if len(readable) < max(1, need):
        return Outcome(
            FAILED,
            counts={FAILED: failed, **Counter(v.side for v in readable)},
            reason=f"{len(readable)} of {len(votes)} samples readable, {max(1, need)} needed",
        )
    result, counts = _plurality(readable)
    if failed:
        counts[FAILED] = failed
    if result == TIE:
        reason = "the judge said the candidates are equal" if set(counts) <= {TIE, FAILED} else "samples split evenly"
        return Outcome(TIE, counts=counts, reason=reason)
    return Outcome(result, _strength_of(readable, result), counts)


def combine_orders(first: Outcome, second: Outcome) -> Outcome:
    """One judge's outcome from both orders (AB then BA), MT-Bench style: disagreement is a tie."""
    counts = {f"AB:{k}": n for k, n in first.counts.items()} | {f"BA:{k}": n for k, n in second.counts.items()}
    if FAILED in (first.result, second.result):
        return Outcome(FAILED, counts=counts, reason="no answer in one of the orders")
    if first.decided and first.result == second.result:
        strength = CLEARLY if first.strength == second.strength == CLEARLY else SLIGHTLY
        return Outcome(first.result, strength, counts)
    if first.result == second.result == TIE:
        return Outcome(TIE, counts=counts, reason="a tie in both orders")
    return Outcome(TIE, counts=counts, reason="the orders disagree")


def panel_vote(outcomes: Sequence[Outcome]) -> Outcome:
    """Majority across judges; failed judges abstain (see the module docstring)."""
    if not outcomes:
        return Outcome(FAILED, reason="no judges")
    voting = [o for o in outcomes if o.result != FAILED]
    abstained = len(outcomes) - len(voting)
    if not voting:
        return Outcome(FAILED, counts={FAILED: abstained}, reason="every judge failed")
    votes = [Vote(o.result, o.strength) for o in voting]
    result, counts = _plurality(votes)
    if abstained:
        counts[FAILED] = abstained
    if result == TIE:
        return Outcome(TIE, counts=counts, reason="the judges split evenly" if len(voting) > 1 else "a tie")
    return Outcome(result, _strength_of(votes, result), counts)


# --- pointwise mode ---------------------------------------------------------------------------------

#: Log-odds differences (nats) below which two pointwise scores are a tie, and from which "clearly".
POINTWISE_TIE_MARGIN = 0.05
POINTWISE_CLEAR_MARGIN = 1.0


def pointwise_vote(
    score_a: float,
    score_b: float,
    *,
    tie_margin: float = POINTWISE_TIE_MARGIN,
    clear_margin: float = POINTWISE_CLEAR_MARGIN,
) -> Outcome:
    """One judge's outcome from its pointwise scores of A and B (log-odds of "good"): the higher wins.

    A difference below ``tie_margin`` is a tie; from ``clear_margin`` on, ``clearly``.
    """
    diff = score_a - score_b
    counts = {"A": 1} if diff > 0 else {"B": 1} if diff < 0 else {TIE: 1}
    if abs(diff) < tie_margin:
        return Outcome(TIE, counts={TIE: 1}, reason=f"scores within {tie_margin:g} (A {score_a:.3f}, B {score_b:.3f})")
    side = A if diff > 0 else B
    return Outcome(side, CLEARLY if abs(diff) >= clear_margin else SLIGHTLY, counts)


# --- position bias ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionBias:
    """How much a judge's answers follow the position rather than the content.

    ``n_pairs``: pairs judged in both orders with a readable choice in each. ``follows_position``:
    share of those where the same *position* won both times (so the side flipped with the order),
    MT-Bench's inconsistency rate. ``consistent``: share where the same *side* won both times.
    ``first_rate``: share of all readable non-tie answers that picked Candidate 1 (0.5 is unbiased).
    None when there is nothing to measure.
    """

    n_pairs: int
    follows_position: float | None
    consistent: float | None
    first_rate: float | None
    n_answers: int

    @property
    def follows_position_ci(self) -> tuple[float, float] | None:
        """95% Wilson interval of ``follows_position`` over the ``n_pairs`` pairs (None when there are none)."""
        if self.follows_position is None:
            return None
        return wilson_interval(round(self.follows_position * self.n_pairs), self.n_pairs)


def position_bias(answers: Iterable[tuple[object, str, str]]) -> PositionBias:
    """Position bias from ``(pair key, order, shown choice)`` triples (choice "1", "2", "tie" or "").

    Several samples of one pair in one order are combined by majority first (an even split counts
    as unreadable there), so a pair counts once.
    """
    per: dict[object, dict[str, Counter[str]]] = {}
    first = total = 0
    for key, order, choice in answers:
        if order not in ("AB", "BA"):
            raise ValueError(f"order must be 'AB' or 'BA', got {order!r}")
        if choice in ("1", "2"):
            total += 1
            first += choice == "1"
        if choice in ("1", "2", "tie"):
            per.setdefault(key, {}).setdefault(order, Counter())[choice] += 1
    follows = consistent = n = 0
    for orders in per.values():
        if set(orders) != {"AB", "BA"}:
            continue
        ab, ba = _top(orders["AB"]), _top(orders["BA"])
        if not ab or not ba:
            continue
        n += 1
        if ab == ba and ab != "tie":
            follows += 1  # same position both times: the side changed with the order
        elif {ab, ba} == {"1", "2"}:
            consistent += 1  # 1 in AB and 2 in BA (or the reverse): the same side both times
        elif ab == ba == "tie":
            consistent += 1
    return PositionBias(
        n_pairs=n,
        follows_position=follows / n if n else None,
        consistent=consistent / n if n else None,
        first_rate=first / total if total else None,
        n_answers=total,
    )


def _top(counter: Counter[str]) -> str:
    ranked = counter.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return ""
    return ranked[0][0]


# --- agreement with humans -------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion ``successes`` / ``n`` (95% with the default ``z``).

    Unlike the normal approximation it stays inside [0, 1] and is honest at small ``n`` and at
    proportions of 0 or 1 (what a few dozen judged pairs give). None when ``n`` is 0.
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Agreement:
    """A judge against D_gold on the pairs it decided. ``coverage``: share of pairs it decided at all."""

    n: int
    n_decided: int
    accuracy: float | None
    kappa: float | None
    coverage: float | None
    n_correct: int = 0

    @property
    def accuracy_ci(self) -> tuple[float, float] | None:
        """95% Wilson interval of the accuracy (None when nothing was decided)."""
        return wilson_interval(self.n_correct, self.n_decided)


def agreement(pairs: Iterable[tuple[str, str]]) -> Agreement:
    """Accuracy and Cohen's kappa of (judge result, human side) pairs; ties and failures lower coverage only.

    Kappa = (p_o − p_e) / (1 − p_e) over the A/B labels; undefined (None) when p_e = 1 (both
    raters always say the same single side) or nothing was decided.
    """
    rows = list(pairs)
    for judged, human in rows:
        if human not in DECIDED:
            raise ValueError(f"the human label must be A or B, got {human!r}")
        if judged not in RESULTS:
            raise ValueError(f"a judge result must be one of {', '.join(RESULTS)}, got {judged!r}")
    decided = [(j, h) for j, h in rows if j in DECIDED]
    n = len(decided)
    if not n:
        return Agreement(len(rows), 0, None, None, 0.0 if rows else None)
    correct = sum(j == h for j, h in decided)
    observed = correct / n
    judge_a = sum(j == A for j, _ in decided) / n
    human_a = sum(h == A for _, h in decided) / n
    expected = judge_a * human_a + (1 - judge_a) * (1 - human_a)
    kappa = None if math.isclose(expected, 1.0) else (observed - expected) / (1 - expected)
    return Agreement(len(rows), n, observed, kappa, n / len(rows), correct)
