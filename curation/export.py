"""Export: a project's curated pairs as JSON Lines (the command, the page and the API all call this).

By default only verified data is exported: pairs with a ``VerifiedPair`` (D_gold), with their final
label and how it was reached. Other selections a user can ask for:

* ``all``: every complete pair, verified ones with their final label and the others with the
  annotators' raw majority (``verified: false``; pairs without a majority are left out);
* ``disputed``: pairs with an open dispute, for outside review (no label; labels included);
* ``discarded``: pairs a lead or the all-"can't decide" rule discarded (no label; labels included).

Every line is built by :func:`curation.verdicts.pair_record`, like every dataset-version line.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from annotation.models import Pair, Project
from annotation.preference import parse
from curation.models import Dispute, VerifiedPair
from curation.verdicts import FORMATS, VERIFIED, labels_by_pair, pair_record, verdicts_for

__all__ = ["EXPORT_FORMATS", "FORMATS", "SELECTIONS", "ExportStats", "export_lines", "export_to", "export_validate"]

#: What a user may export in: the two TRL formats, plus ``messages`` (what rewardmodel.ml reads).
EXPORT_FORMATS = FORMATS
SELECTIONS: dict[str, str] = {
    "verified": "Verified pairs (D_gold) with their final label",
    "all": "All complete pairs: verified ones final, the others with their raw majority (unverified)",
    "disputed": "Pairs with an open dispute, for outside review",
    "discarded": "Discarded pairs",
}
DEFAULT_SELECTION = "verified"
CHUNK = 1000


@dataclass
class ExportStats:
    """What an export wrote and what it left out (``left_out``: by reason)."""

    exported: int = 0
    left_out: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"exported {self.exported} pairs"]
        parts += [f"{n} {reason.replace('_', ' ')} left out" for reason, n in sorted(self.left_out.items())]
        return "; ".join(parts)


def export_validate(*, fmt: str, selection: str) -> None:
    """Raise ValidationError naming the bad field (``format`` or ``selection``)."""
    errors = {}
    if fmt not in FORMATS:
        errors["format"] = f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}"
    if selection not in SELECTIONS:
        errors["selection"] = f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}"
    if errors:
        raise ValidationError(errors)


def export_pairs(project: Project, selection: str) -> QuerySet[Pair]:
    """The pairs a selection covers, in id order."""
    pairs = Pair.objects.filter(project=project)
    if selection == "verified":
        pairs = pairs.filter(pk__in=VerifiedPair.objects.filter(project=project).values("pair_id"))
    elif selection == "all":
        pairs = pairs.filter(status=Pair.Status.COMPLETE)
    elif selection == "disputed":
        pairs = pairs.filter(
            pk__in=Dispute.objects.filter(project=project, status=Dispute.Status.OPEN).values("pair_id")
        )
    elif selection == "discarded":
        pairs = pairs.filter(
            pk__in=Dispute.objects.filter(project=project, status=Dispute.Status.DISCARDED).values("pair_id")
        )
    else:
        raise ValidationError({"selection": f"unknown selection {selection!r}"})
    return pairs.order_by("pk")


def _chunks(queryset: QuerySet[Pair]) -> Iterator[list[Pair]]:
    last = 0
    while rows := list(queryset.filter(pk__gt=last)[:CHUNK]):
        yield rows
        last = rows[-1].pk


def export_records(
    project: Project,
    *,
    fmt: str = "conversational",
    selection: str = DEFAULT_SELECTION,
    include_labels: bool | None = None,
    include_evidence: bool = False,
    stats: ExportStats | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the selection's records. ``include_labels`` defaults to on for disputed/discarded pairs."""
    export_validate(fmt=fmt, selection=selection)
    stats = stats if stats is not None else ExportStats()
    with_labels = include_labels if include_labels is not None else selection in ("disputed", "discarded")
    for pairs in _chunks(export_pairs(project, selection)):
        labels = labels_by_pair(p.pk for p in pairs)
        verdicts = verdicts_for(pairs, labels)
        evidence = _evidence([p.pk for p in pairs]) if include_evidence else {}
        for pair in pairs:
            verdict = verdicts[pair.pk]
            if selection == "verified" and verdict.state != VERIFIED:
                stats.left_out[verdict.state] += 1  # a verified pair whose dispute is open again is not settled
                continue
            if selection == "all" and verdict.state != VERIFIED:
                if verdict.majority is None:
                    stats.left_out["no_majority"] += 1
                    continue
                # The raw annotator majority, said to be unverified (the line keeps its state).
                side, strength = parse(verdict.majority)
                verdict = replace(verdict, side=side, strength=strength, via=VerifiedPair.Via.MAJORITY)
            stats.exported += 1
            yield pair_record(
                pair,
                verdict,
                labels[pair.pk],
                fmt=fmt,
                include_labels=with_labels,
                evidence=evidence.get(pair.pk, []) if include_evidence else None,
            )


def _evidence(pair_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    from annotation.tools.selectors import evidence_export_for_pairs

    return evidence_export_for_pairs(pair_ids)


def export_lines(project: Project, **options: Any) -> Iterator[str]:
    """:func:`export_records` as JSON lines (each with its newline), for streaming responses."""
    for record in export_records(project, **options):
        yield json.dumps(record, ensure_ascii=False) + "\n"


def export_to(handle: IO[str], project: Project, **options: Any) -> ExportStats:
    """Write the export to ``handle``; returns what was written and left out."""
    stats = ExportStats()
    for line in export_lines(project, stats=stats, **options):
        handle.write(line)
    return stats
