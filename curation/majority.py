"""The one majority rule for a pair's preference, and the one "most common attribute" rule. No Django.

Everything that needs a pair's majority calls :func:`majority`: the dispute rule
(``curation.rules``), the verdicts (``curation.verdicts``) and so the export and dataset versions.

The rules (the protocol's, see DESIGN.md):

* A side wins when it has **more than half of all labels**. "Can't decide" is a label for neither
  side, so 1 A + 2 "can't decide" has no majority (the pair goes to a lead), and neither do ties.
* The winning strength is "clearly" when **more** of the winning votes say clearly than slightly;
  a tie between clearly and slightly gives "slightly" (the conservative reading).
* An attribute's value (task category, objectivity, controversiality) is the value given by
  **strictly more labels than any other**; a tie for the top has no value (None), whatever the
  order the labels came in. Blank values are not votes.
* A desired attribute is kept when **more than half of the labels** tick it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from annotation.preference import CLEARLY, SIDES, SLIGHTLY, build, other_side, parse


@dataclass(frozen=True)
class Majority:
    """A pair's majority: ``side`` "A"/"B" and ``strength`` "clearly"/"slightly", or both None.

    ``votes`` counts every label: ``{"A": n, "B": n, "undecidable": n}``.
    """

    side: str | None
    strength: str | None
    votes: dict[str, int] = field(default_factory=dict)

    @property
    def preference(self) -> str | None:
        """The canonical code, e.g. ``"A_CLEARLY"``; None without a majority."""
        return None if self.side is None or self.strength is None else build(self.side, self.strength)

    @property
    def n(self) -> int:
        return sum(self.votes.values())

    def votes_for(self, side: str) -> dict[str, int]:
        """The votes seen from ``side``: ``{"chosen": n, "rejected": n, "undecidable": n}``."""
        return {
            "chosen": self.votes.get(side, 0),
            "rejected": self.votes.get(other_side(side), 0),
            "undecidable": self.votes.get("undecidable", 0),
        }


def majority(preferences: Iterable[str]) -> Majority:
    """The majority of one pair's labels (canonical codes). Raises ValueError naming an unknown code."""
    votes = {"A": 0, "B": 0, "undecidable": 0}
    strengths: dict[str, Counter[str]] = {side: Counter() for side in SIDES}
    for code in preferences:
        side, strength = parse(code)
        if side is None or strength is None:
            votes["undecidable"] += 1
            continue
        votes[side] += 1
        strengths[side][strength] += 1
    total = sum(votes.values())
    for side in SIDES:
        if votes[side] * 2 > total:
            won = strengths[side]
            return Majority(side, CLEARLY if won[CLEARLY] > won[SLIGHTLY] else SLIGHTLY, votes)
    return Majority(None, None, votes)


def attribute_mode(values: Iterable[str | None]) -> str | None:
    """The value given strictly more often than any other (blank values ignored); None on a tie or no value."""
    counts = Counter(v for v in values if v not in (None, ""))
    if not counts:
        return None
    (top, n_top), *rest = counts.most_common(2)
    if rest and rest[0][1] == n_top:
        return None
    return top


def desired_majority(selections: Sequence[Iterable[str]]) -> list[str]:
    """Desired attributes ticked by more than half of the labels, sorted."""
    n = len(selections)
    counts = Counter(attr for chosen in selections for attr in set(chosen))
    return sorted(attr for attr, count in counts.items() if count * 2 > n)
