"""Human agreement of kept and flipped pairs per filter: the paper's Table 19 in our form.

Pure module (no Django, no torch). On pairs whose human label is known, each row says whether the
pair's source label agrees with the human label, the two models' probabilities that the source
label is right, and the outcome the stage-2 rule gave it. For each filter the table reports:

* ``kept``: pairs the filter keeps, and the fraction of them whose (unchanged) label agrees with
  the human label;
* ``flipped``: pairs the filter flips, and the fraction whose flipped label agrees with the human
  label (their source label disagrees with it);
* ``discarded``: pairs left out (the strict policy only).

Filters: ``best+gold`` is the stage-2 rule itself (the outcome given, judges and policy included);
``gold only`` and ``best only`` apply one model alone: keep when its p is above the threshold,
otherwise flip (paper policy) or, under the strict policy, flip only when its p is below
``threshold − flip_margin`` and discard the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from curation.stage2 import rules

FILTERS = ("best+gold", "gold only", "best only")


@dataclass(frozen=True)
class AgreementRow:
    """One pair with a known human label, as the report needs it."""

    label_agrees: bool
    p_best: float
    p_gold: float
    outcome: str


def _single(p: float, config: rules.FilterConfig) -> str:
    if p > config.threshold:
        return rules.KEPT
    if config.policy == rules.PAPER or p < config.threshold - config.flip_margin:
        return rules.FLIPPED
    return rules.DISCARDED


def _cell(n: int, agree: int) -> dict[str, Any]:
    return {"n": n, "agree": agree, "agreement": agree / n if n else None}


def agreement_table(rows: Iterable[AgreementRow], config: rules.FilterConfig | None = None) -> dict[str, Any]:
    """Per filter: ``{"kept": {n, agree, agreement}, "flipped": {...}, "discarded": n}``, plus ``n``.

    ``agreement`` is None where a filter kept (or flipped) nothing. Raises ValueError for an
    unknown outcome or a probability outside [0, 1] (named).
    """
    config = config or rules.FilterConfig()
    counts = {name: {rules.KEPT: [0, 0], rules.FLIPPED: [0, 0], rules.DISCARDED: [0, 0]} for name in FILTERS}
    n = 0
    for row in rows:
        if row.outcome not in rules.OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(rules.OUTCOMES)}, got {row.outcome!r}")
        p_best = rules._probability("p_best", row.p_best)
        p_gold = rules._probability("p_gold", row.p_gold)
        n += 1
        for name, outcome in (
            ("best+gold", row.outcome),
            ("gold only", _single(p_gold, config)),
            ("best only", _single(p_best, config)),
        ):
            cell = counts[name][outcome]
            cell[0] += 1
            # A kept pair is right when its label agrees; a flipped one when its label did not.
            cell[1] += int(row.label_agrees if outcome == rules.KEPT else not row.label_agrees)
    return {
        "n": n,
        "filters": {
            name: {
                "kept": _cell(*c[rules.KEPT]),
                "flipped": _cell(*c[rules.FLIPPED]),
                "discarded": c[rules.DISCARDED][0],
            }
            for name, c in counts.items()
        },
    }
