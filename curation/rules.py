"""When a fully labelled pair needs a lead: the project's dispute rule applied to its labels.

No database access: callers pass the labels' preference and controversiality codes. The majority
is :func:`curation.majority.majority` (a side wins with more than half of *all* labels, "can't
decide" counting for neither side), the one rule the verdicts, the export and dataset versions use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from annotation.models import Controversiality
from annotation.preference import CLEARLY, SLIGHTLY, build, other_side
from curation.majority import majority

NO_MAJORITY = "no_majority"
UNDECIDABLE = "undecidable"
STRENGTH_SPLIT = "strength_split"
DISSENT = "dissent"
HIGH_CONTROVERSIALITY = "high_controversiality"

SPLIT_NONE = "none"
SPLIT_STRENGTH = "strength"
SPLIT_ANY = "any"


@dataclass(frozen=True)
class DisputeRule:
    """A project's rule (``CurationSettings`` fields without the database)."""

    on_undecidable: bool = True
    split: str = SPLIT_STRENGTH
    on_high_controversiality: bool = False
    auto_discard_undecidable: bool = True


@dataclass(frozen=True)
class PairVerdict:
    """What a pair's labels say.

    ``side``/``strength``: the majority (``"A"``/``"B"``, ``"clearly"``/``"slightly"``) or None.
    ``reason``: why a lead must look (one of the constants above) or None when the majority
    stands. ``discard``: every label was "can't decide" and the rule discards such pairs.
    """

    side: str | None
    strength: str | None
    votes: dict[str, int]
    reason: str | None
    discard: bool = False

    @property
    def preference(self) -> str | None:
        return None if self.side is None or self.strength is None else build(self.side, self.strength)


def pair_verdict(preferences: Sequence[str], controversialities: Sequence[str], rule: DisputeRule) -> PairVerdict:
    """Apply ``rule`` to one pair's labels (regular labels only, never retests).

    Reasons, first match wins: every label undecidable (discarded without review when
    ``auto_discard_undecidable``); no majority; any undecidable label (``on_undecidable``);
    the split rule (``any``: a decided label on the losing side; ``strength``: a losing-side label
    says *clearly* while the majority is only *slightly*); most labels rate controversiality high
    (``on_high_controversiality``).
    """
    found = majority(preferences)
    votes = dict(found.votes)
    n = len(preferences)
    if n and votes["undecidable"] == n:
        return PairVerdict(None, None, votes, UNDECIDABLE, discard=rule.auto_discard_undecidable)
    if found.side is None:
        return PairVerdict(None, None, votes, NO_MAJORITY)
    verdict = PairVerdict(found.side, found.strength, votes, None)
    if rule.on_undecidable and votes["undecidable"]:
        return PairVerdict(found.side, found.strength, votes, UNDECIDABLE)
    loser = other_side(found.side)
    if rule.split == SPLIT_ANY and votes[loser]:
        return PairVerdict(found.side, found.strength, votes, DISSENT)
    if rule.split == SPLIT_STRENGTH and found.strength == SLIGHTLY and build(loser, CLEARLY) in preferences:
        return PairVerdict(found.side, found.strength, votes, STRENGTH_SPLIT)
    if rule.on_high_controversiality and n and sum(c == Controversiality.HIGH for c in controversialities) * 2 > n:
        return PairVerdict(found.side, found.strength, votes, HIGH_CONTROVERSIALITY)
    return verdict
