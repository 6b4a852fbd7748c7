"""Export of labelled pairs as JSON Lines that TRL's RewardTrainer loads as is.

``conversational`` (default): ``prompt`` is a list of messages and ``chosen`` / ``rejected`` are
one-message assistant lists (TRL's conversational preference format, chat template applied by
TRL). ``standard``: ``prompt`` is an hh-rlhf transcript string and ``chosen`` / ``rejected`` are
strings. Both add the votes, strength, attribute labels and annotator count.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any

from annotation.formats import to_transcript
from annotation.models import Annotation, Pair, Preference, Project
from annotation.selectors import pairs_complete_with_annotations

FORMATS = ("conversational", "standard")


@dataclass
class Majority:
    side: str | None  # "A", "B", or None when no side has more than half of the labels
    strength: str | None  # "clearly" or "slightly"
    votes: dict[str, int]


def majority_label(preferences: Sequence[str]) -> Majority:
    """Majority preference of a pair's labels (canonical A/B codes).

    A side wins with more than half of all labels; "can't decide" counts as a label for neither
    side, so 1 A + 2 undecided has no majority (the protocol discards undecidable pairs). Strength
    is "clearly" when most winning votes say clearly, else "slightly".
    """
    votes = {"A": 0, "B": 0, "undecidable": 0}
    strengths: dict[str, Counter[str]] = {"A": Counter(), "B": Counter()}
    for preference in preferences:
        if preference == Preference.UNDECIDABLE:
            votes["undecidable"] += 1
            continue
        side, strength = preference.split("_")
        votes[side] += 1
        strengths[side][strength.lower()] += 1
    total = len(preferences)
    for side in ("A", "B"):
        if total and votes[side] * 2 > total:
            chosen = strengths[side]
            strength = "clearly" if chosen["clearly"] > chosen["slightly"] else "slightly"
            return Majority(side, strength, votes)
    return Majority(None, None, votes)


def _mode(values: Sequence[str]) -> str | None:
    if not values:
        return None
    counts = Counter(values).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None  # a tie has no majority value
    return counts[0][0]


def export_record(pair: Pair, annotations: Sequence[Annotation], fmt: str = "conversational") -> dict[str, Any] | None:
    """One export line for a fully labelled pair, or None when its labels have no majority."""
    majority = majority_label([a.preference for a in annotations])
    if majority.side is None:
        return None
    chosen, rejected = (
        (pair.response_a, pair.response_b) if majority.side == "A" else (pair.response_b, pair.response_a)
    )
    n = len(annotations)
    desired = Counter(attr for a in annotations for attr in a.desired_attributes)
    record: dict[str, Any] = {}
    if fmt == "conversational":
        record["prompt"] = pair.conversation
        record["chosen"] = [{"role": "assistant", "content": chosen}]
        record["rejected"] = [{"role": "assistant", "content": rejected}]
    else:
        record["prompt"] = to_transcript(pair.conversation)
        record["chosen"] = chosen
        record["rejected"] = rejected
    loser = "B" if majority.side == "A" else "A"
    record.update(
        {
            "id": pair.external_id or str(pair.pk),
            "pair_id": pair.pk,
            "votes": {
                "chosen": majority.votes[majority.side],
                "rejected": majority.votes[loser],
                "undecidable": majority.votes["undecidable"],
            },
            "strength": majority.strength,
            "n_annotators": n,
            "agrees_with_source": (majority.side == pair.source_label) if pair.source_label else None,
            "attributes": {
                "task_category": _mode([a.task_category for a in annotations]),
                "objectivity": _mode([a.objectivity for a in annotations]),
                "controversiality": _mode([a.controversiality for a in annotations]),
                "desired_attributes": sorted(attr for attr, count in desired.items() if count * 2 > n),
                "guidelines": [a.guideline for a in annotations if a.guideline],
            },
            "labels": [
                {
                    "annotator_id": a.annotator_id,
                    "preference": a.preference,
                    "order_shown": a.order_shown,
                    "task_category": a.task_category,
                    "objectivity": a.objectivity,
                    "controversiality": a.controversiality,
                    "desired_attributes": a.desired_attributes,
                    "guideline": a.guideline,
                    "rationale": a.rationale,
                    "time_spent_ms": a.time_spent_ms,
                }
                for a in annotations
            ],
            "source": pair.source,
            "subset": pair.subset,
        }
    )
    return record


@dataclass
class ExportStats:
    exported: int = 0
    no_majority: int = 0


EVIDENCE_CHUNK = 500


def _with_evidence(
    pairs: Iterator[tuple[Pair, list[Annotation]]],
) -> Iterator[tuple[Pair, list[Annotation], list[dict[str, Any]] | None]]:
    """Attach each pair's tool evidence (searches, opened results, snippets, code runs, AI questions), fetched per chunk."""
    from annotation.tools.selectors import evidence_export_for_pairs

    while chunk := list(islice(pairs, EVIDENCE_CHUNK)):
        evidence = evidence_export_for_pairs([pair.pk for pair, _ in chunk])
        for pair, labels in chunk:
            yield pair, labels, evidence.get(pair.pk, [])


def export_lines(
    project: Project, fmt: str = "conversational", stats: ExportStats | None = None, *, include_evidence: bool = False
) -> Iterator[str]:
    """Yield JSON lines (with newline) for every fully labelled pair with a majority.

    ``include_evidence`` adds ``evidence``: what each annotator gathered with the tools.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    stats = stats if stats is not None else ExportStats()
    pairs = pairs_complete_with_annotations(project)
    rows = _with_evidence(pairs) if include_evidence else ((pair, labels, None) for pair, labels in pairs)
    for pair, labels, evidence in rows:
        record = export_record(pair, labels, fmt)
        if record is None:
            stats.no_majority += 1
            continue
        if evidence is not None:
            record["evidence"] = evidence
        stats.exported += 1
        yield json.dumps(record, ensure_ascii=False) + "\n"


def export_to(
    handle: IO[str], project: Project, fmt: str = "conversational", *, include_evidence: bool = False
) -> ExportStats:
    stats = ExportStats()
    for line in export_lines(project, fmt, stats, include_evidence=include_evidence):
        handle.write(line)
    return stats
