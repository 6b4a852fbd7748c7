"""What a curation round needs before it can change anything, said in words for the round pages.

A round trains on D_silver (unverified pairs with a source label, plus part of D_gold), validates
on D_gold, scores the verified pairs and retrieves unlabelled neighbours of the mispredicted ones.
Without verified pairs it has nothing to validate on, score or retrieve around: it would run to
"Done" and change nothing, so the pages warn before it starts and say what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from annotation.models import Pair, Project
from curation.models import CurationRound, Dispute, VerifiedPair


@dataclass(frozen=True)
class RoundReadiness:
    n_verified: int
    n_silver: int
    n_pool: int
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.missing


def round_readiness(project: Project) -> RoundReadiness:
    """Counts of what a round would use now, and a sentence for each thing missing (three count queries)."""
    verified = VerifiedPair.objects.filter(pair=OuterRef("pk"))
    disputed = Dispute.objects.filter(pair=OuterRef("pk"))
    unsettled = Pair.objects.filter(project=project).exclude(Exists(verified)).exclude(Exists(disputed))
    n_verified = VerifiedPair.objects.filter(project=project).count()
    n_silver = unsettled.exclude(source_label="").count()
    n_pool = unsettled.filter(n_submitted=0).count()
    missing = []
    if n_verified == 0:
        missing.append(
            "No verified pairs (D_gold is empty): the round would have nothing to validate the model on, "
            "to score or to retrieve neighbours around. Label pairs until a batch passes the agreement gate, "
            "or accept a flagged batch on the Agreement page."
        )
    if n_silver == 0 and n_verified < 2:
        missing.append("No training pairs: no unverified pair has a source label and D_gold is too small to split.")
    if n_pool == 0:
        missing.append("No unlabelled pairs to retrieve into the queue: import more pairs.")
    return RoundReadiness(n_verified, n_silver, n_pool, tuple(missing))


def round_shortfall(round_: CurationRound) -> list[str]:
    """What a finished round lacked, from its own metrics (empty when it had what it needed)."""
    notes = []
    metrics = round_.metrics or {}
    if round_.status == CurationRound.Status.DONE and not metrics.get("n_verified"):
        notes.append(
            "This round had no verified pairs, so it scored nothing and retrieved nothing: "
            "its model was not validated on D_gold."
        )
    if round_.status == CurationRound.Status.DONE and metrics.get("n_verified") and not metrics.get("n_queued"):
        notes.append("Nothing was queued: no unlabelled pair was close enough to a verified one, or the pool is empty.")
    return notes
