"""The stage-2 filter rule and the recycling policies (paper §3.3; DESIGN.md "Stage 2").

Pure module (no Django, no torch). For one pool pair with its original label:

* ``p_best`` / ``p_gold``: the current best / gold reward model's probability that the original
  label is right, p = σ(r_chosen − r_rejected).
* The best RM *confirms* the label when ``p_best > threshold + band``; every other pair (the best
  RM disagrees, or sits in the uncertain band around the threshold) goes to the LLM judges.
  Without judges (none configured, or their answer is a tie or a failure) only an explicit
  ``agree`` counts: the judges "agree" with nothing else, so such a pair is treated as
  "best RM disagrees".
* Keep the original label only if the gold RM agrees (``p_gold > threshold``) AND (the best RM
  confirms OR the judges agree).
* A pair not kept is recycled by policy: ``paper`` flips every one (chosen and rejected swapped);
  ``strict`` flips only where both RMs say the label is reversed by ``flip_margin``
  (``p_best < threshold − flip_margin`` and ``p_gold < threshold − flip_margin``) and discards the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KEPT = "kept"
FLIPPED = "flipped"
DISCARDED = "discarded"
OUTCOMES = (KEPT, FLIPPED, DISCARDED)

PAPER = "paper"
STRICT = "strict"
POLICIES = (PAPER, STRICT)

# What the judges said about the original label (curation.stage2.judging turns answers into these).
JUDGE_AGREE = "agree"
JUDGE_DISAGREE = "disagree"
JUDGE_TIE = "tie"
JUDGE_FAILED = "failed"
JUDGE_NONE = "none"  # no judge configured, or not asked
JUDGE_OUTCOMES = (JUDGE_AGREE, JUDGE_DISAGREE, JUDGE_TIE, JUDGE_FAILED, JUDGE_NONE)


@dataclass(frozen=True)
class FilterConfig:
    """The rule's settings. ``threshold`` 0.5 is the paper's; ``band`` widens what goes to the judges."""

    threshold: float = 0.5
    band: float = 0.0
    policy: str = PAPER
    flip_margin: float = 0.0

    def __post_init__(self) -> None:
        for name in ("threshold", "band", "flip_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be strictly between 0 and 1, got {self.threshold!r}")
        if not 0.0 <= self.band < min(self.threshold, 1.0 - self.threshold):
            raise ValueError(
                f"band must be at least 0 and leave room on both sides of the threshold, got {self.band!r}"
            )
        if not 0.0 <= self.flip_margin < self.threshold:
            raise ValueError(f"flip_margin must be at least 0 and below the threshold, got {self.flip_margin!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")


@dataclass(frozen=True)
class Decision:
    """The rule's answer for one pair: its outcome and the facts it rests on."""

    outcome: str
    best_confirms: bool
    gold_agrees: bool
    to_judges: bool
    judges: str

    @property
    def flipped(self) -> bool:
        return self.outcome == FLIPPED


def _probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def needs_judges(p_best: float, config: FilterConfig) -> bool:
    """Whether the best RM leaves the pair to the judges (it does not confirm the label beyond the band)."""
    return not _probability("p_best", p_best) > config.threshold + config.band


def decide(p_best: float, p_gold: float, judges: str = JUDGE_NONE, config: FilterConfig | None = None) -> Decision:
    """Keep, flip or discard one pair (see the module docstring). ``judges`` is only read when the
    best RM leaves the pair to them; a judge answer other than ``agree`` never keeps a pair."""
    config = config or FilterConfig()
    p_best = _probability("p_best", p_best)
    p_gold = _probability("p_gold", p_gold)
    if judges not in JUDGE_OUTCOMES:
        raise ValueError(f"judges must be one of {', '.join(JUDGE_OUTCOMES)}, got {judges!r}")
    to_judges = needs_judges(p_best, config)
    best_confirms = not to_judges
    judged = judges if to_judges else JUDGE_NONE
    gold_agrees = p_gold > config.threshold
    if gold_agrees and (best_confirms or judged == JUDGE_AGREE):
        outcome = KEPT
    elif config.policy == PAPER:
        outcome = FLIPPED
    else:
        reversed_below = config.threshold - config.flip_margin
        outcome = FLIPPED if p_best < reversed_below and p_gold < reversed_below else DISCARDED
    return Decision(outcome, best_confirms, gold_agrees, to_judges, judged)
