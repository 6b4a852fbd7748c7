"""The dispute rule (curation.rules.pair_verdict) on every kind of label set."""

from __future__ import annotations

import pytest

from curation.rules import DisputeRule, pair_verdict
from tests.curation.helpers import A_CLEARLY, A_SLIGHTLY, B_CLEARLY, B_SLIGHTLY, UNDECIDABLE


@pytest.mark.parametrize(
    ("labels", "rule", "reason", "side"),
    [
        ([A_CLEARLY, A_CLEARLY, A_SLIGHTLY], DisputeRule(), None, "A"),
        ([A_CLEARLY, B_CLEARLY, UNDECIDABLE], DisputeRule(), "no_majority", None),
        ([A_SLIGHTLY, A_SLIGHTLY, B_CLEARLY], DisputeRule(), "strength_split", "A"),
        ([A_CLEARLY, A_CLEARLY, B_CLEARLY], DisputeRule(), None, "A"),  # majority not "only slightly"
        ([A_CLEARLY, A_SLIGHTLY, B_CLEARLY], DisputeRule(), "strength_split", "A"),  # 1-1 strength tie: slightly
        ([A_SLIGHTLY, A_SLIGHTLY, B_CLEARLY], DisputeRule(split="none"), None, "A"),
        ([A_CLEARLY, A_CLEARLY, B_SLIGHTLY], DisputeRule(split="any"), "dissent", "A"),
        ([A_CLEARLY, A_CLEARLY, UNDECIDABLE], DisputeRule(), "undecidable", "A"),
        ([A_CLEARLY, A_CLEARLY, UNDECIDABLE], DisputeRule(on_undecidable=False), None, "A"),
        ([A_CLEARLY, UNDECIDABLE, UNDECIDABLE], DisputeRule(on_undecidable=False), "no_majority", None),
    ],
)
def test_dispute_rule(labels: list[str], rule: DisputeRule, reason: str | None, side: str | None) -> None:
    verdict = pair_verdict(labels, ["low"] * len(labels), rule)
    assert (verdict.reason, verdict.side) == (reason, side)


def test_high_controversiality_rule() -> None:
    rule = DisputeRule(on_high_controversiality=True)
    assert pair_verdict([A_CLEARLY] * 3, ["high", "high", "low"], rule).reason == "high_controversiality"
    assert pair_verdict([A_CLEARLY] * 3, ["high", "low", "low"], rule).reason is None
    assert pair_verdict([A_CLEARLY] * 3, ["high"] * 3, DisputeRule()).reason is None
