"""A pair's final verdict, in one place: selectors that read it and the one record builder.

What the pipeline decided about a pair is spread over a few tables (``VerifiedPair``, ``Dispute``
and its ``DisputeResolution`` rows, the batch gate); this module is the only reader that combines
them, so the export, dataset versions, rounds and the API all say the same thing:

* ``verified``: the pair has a ``VerifiedPair`` (D_gold, or later D_silver): its final label and
  how it was reached (``via``: ``majority``, ``lead``; issues 11/12 add ``judge`` and ``filter``,
  which flow through unchanged since ``via`` is read from the row).
* ``disputed``: an open dispute waits for a lead. Never settled, whatever its labels say.
* ``discarded``: a lead (or the all-"can't decide" rule) discarded it.
* ``pending``: complete, but its batch's gate is not open yet: either a clean majority
  (``via=majority``) or a lead's resolution (``via=lead``; the latest resolution wins) waiting
  for the gate. Not settled.
* ``incomplete``: not all its labels are in.

A verified pair whose dispute is open again cannot happen (a lead's re-decision either keeps a
label or discards); the check order below still puts an open dispute first, so a pair is never
shown as settled while disputed.

:func:`pair_record` builds every line of every export and every dataset version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery

from annotation.formats import to_transcript
from annotation.models import Annotation, Pair
from annotation.preference import build, chosen_rejected, parse
from curation.majority import Majority, attribute_mode, desired_majority, majority
from curation.models import Dispute, DisputeResolution, VerifiedPair

VERIFIED = "verified"
PENDING = "pending"
DISPUTED = "disputed"
DISCARDED = "discarded"
INCOMPLETE = "incomplete"
STATES = (VERIFIED, PENDING, DISPUTED, DISCARDED, INCOMPLETE)

#: ``via`` of a line whose label is the source file's (chosen/rejected at import), not a human's.
VIA_SOURCE = "source"
#: ``via`` of a stage-2 line: the consistency filter kept the source's label or flipped it (pool silver, never D_gold).
VIA_FILTER = "filter"

#: Record shapes. ``conversational``: TRL's conversational preference format (message lists).
#: ``standard``: TRL's standard format (hh-rlhf transcript and strings). ``messages``: the prompt
#: as a message list and the responses as strings, what ``rewardmodel.ml`` trains on (dataset versions).
FORMATS = ("conversational", "standard", "messages")


@dataclass(frozen=True)
class Verdict:
    """What the pipeline says about one pair (see the module docstring for ``state``).

    ``side``/``strength``: the label the pair stands for now (verified: the final one; pending:
    the one waiting for the gate; disputed/discarded: None). ``majority``: the annotators' raw
    majority under the one rule, whatever was decided. ``reason``: the dispute's reason, if any.
    """

    pair_id: int
    state: str
    side: str | None = None
    strength: str | None = None
    via: str | None = None
    pool: str | None = None
    votes: dict[str, int] = field(default_factory=dict)
    majority: str | None = None
    reason: str | None = None

    @property
    def verified(self) -> bool:
        return self.state == VERIFIED

    @property
    def settled(self) -> bool:
        """Verified or discarded: nothing more will happen to the pair unless a lead re-decides."""
        return self.state in (VERIFIED, DISCARDED)

    @property
    def preference(self) -> str | None:
        """The canonical code of ``side``/``strength``, e.g. ``"A_CLEARLY"``."""
        return None if self.side is None or self.strength is None else build(self.side, self.strength)


# --- selectors -----------------------------------------------------------------------------------


def labels_by_pair(pair_ids: Iterable[int]) -> dict[int, list[Annotation]]:
    """Each pair's regular labels (never retests), in submission order."""
    ids = list(pair_ids)
    found: dict[int, list[Annotation]] = {pid: [] for pid in ids}
    for annotation in Annotation.objects.filter(pair_id__in=ids, is_retest=False).order_by("submitted_at", "id"):
        found[annotation.pair_id].append(annotation)
    return found


def verdicts_for(pairs: Sequence[Pair], labels: dict[int, list[Annotation]] | None = None) -> dict[int, Verdict]:
    """The verdict of each pair (a few queries per call, whatever the number of pairs).

    ``labels`` (from :func:`labels_by_pair`) saves a query when the caller has them already.
    """
    ids = [p.pk for p in pairs]
    labels = labels if labels is not None else labels_by_pair(ids)
    verified = {v.pair_id: v for v in VerifiedPair.objects.filter(pair_id__in=ids)}
    latest = DisputeResolution.objects.filter(dispute=OuterRef("pk")).order_by("-created_at", "-id")
    disputes = {
        d.pair_id: d
        for d in Dispute.objects.filter(pair_id__in=ids).annotate(
            latest_decision=Subquery(latest.values("decision")[:1])
        )
    }
    result: dict[int, Verdict] = {}
    for pair in pairs:
        found = majority(a.preference for a in labels.get(pair.pk, []))
        result[pair.pk] = _verdict(pair, found, verified.get(pair.pk), disputes.get(pair.pk))
    return result


def _verdict(pair: Pair, found: Majority, verified: VerifiedPair | None, dispute: Dispute | None) -> Verdict:
    raw = found.preference
    if dispute is not None and dispute.status == Dispute.Status.OPEN:
        return Verdict(pair.pk, DISPUTED, votes=dispute.votes, majority=raw, reason=dispute.reason)
    if dispute is not None and dispute.status == Dispute.Status.DISCARDED:
        return Verdict(pair.pk, DISCARDED, votes=dispute.votes, majority=raw, reason=dispute.reason)
    reason = dispute.reason if dispute is not None else None
    if verified is not None:
        return Verdict(
            pair.pk,
            VERIFIED,
            verified.side,
            verified.strength,
            via=verified.via,
            pool=verified.pool,
            votes=verified.votes or found.votes,
            majority=raw,
            reason=reason,
        )
    if pair.status != Pair.Status.COMPLETE:
        return Verdict(pair.pk, INCOMPLETE, votes=found.votes, majority=raw)
    if dispute is not None:  # resolved by a lead, waiting for the batch gate: the latest decision counts
        decision = getattr(dispute, "latest_decision", None)
        side, strength = _split_decision(decision)
        return Verdict(pair.pk, PENDING, side, strength, VerifiedPair.Via.LEAD, None, dispute.votes, raw, reason)
    # A clean majority waiting for its gate (or for the dispute rule, which runs on completion).
    return Verdict(pair.pk, PENDING, found.side, found.strength, VerifiedPair.Via.MAJORITY, None, found.votes, raw)


def _split_decision(decision: str | None) -> tuple[str | None, str | None]:
    if decision is None or decision == DisputeResolution.Decision.DISCARD:
        return None, None
    return parse(decision)


def pair_verdict_get(pair: Pair) -> Verdict:
    """One pair's verdict."""
    return verdicts_for([pair])[pair.pk]


#: ``via``/``pool`` of a label the LLM judges gave (curation.judges): D_silver, never D_gold.
VIA_JUDGE = "judge"
POOL_SILVER = "silver"


def judge_verdicts(pair_ids: Iterable[int]) -> dict[int, Verdict]:
    """The judges' D_silver labels of these pairs (``via=judge``, ``pool=silver``), one query.

    A judge verdict never makes a pair verified: its state is that of an unverified pair
    (``pending`` when complete, else ``incomplete``), like :func:`source_verdict`'s.
    """
    from curation.judges.models import JudgeVerdict

    found: dict[int, Verdict] = {}
    for row in JudgeVerdict.objects.filter(pair_id__in=list(pair_ids)).select_related("pair"):
        state = PENDING if row.pair.status == Pair.Status.COMPLETE else INCOMPLETE
        # votes stay the annotators' (none here); the judges' counts are on the JudgeVerdict row.
        found[row.pair_id] = Verdict(row.pair_id, state, row.side, row.strength, VIA_JUDGE, POOL_SILVER)
    return found


def source_verdict(pair: Pair) -> Verdict:
    """A line for an unverified pair that carries its source file's label (D_silver candidates in rounds)."""
    state = PENDING if pair.status == Pair.Status.COMPLETE else INCOMPLETE
    return Verdict(pair.pk, state, pair.source_label or None, None, VIA_SOURCE)


def filter_verdict(pair: Pair, side: str) -> Verdict:
    """A stage-2 line: the side the consistency filter settled on (the source's label kept, or flipped).

    Model-verified, not human-verified: pool ``silver`` and ``via`` ``filter``, no strength.
    """
    return Verdict(pair.pk, VERIFIED, side, None, VIA_FILTER, "silver")


# --- the one record builder ----------------------------------------------------------------------


def label_record(a: Annotation) -> dict[str, Any]:
    """One annotator's label as the export shows it (canonical A/B plus the order they saw)."""
    return {
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


def attribute_majorities(labels: Sequence[Annotation]) -> dict[str, Any]:
    """The attribute majorities of a pair's labels (curation.majority's rules)."""
    if not labels:  # a filter's verdict: what the rules give for no labels, without the counting
        return {"task_category": None, "objectivity": None, "controversiality": None, "desired_attributes": [], "guidelines": []}  # fmt: skip
    return {
        "task_category": attribute_mode(a.task_category for a in labels),
        "objectivity": attribute_mode(a.objectivity for a in labels),
        "controversiality": attribute_mode(a.controversiality for a in labels),
        "desired_attributes": desired_majority([a.desired_attributes or [] for a in labels]),
        "guidelines": [a.guideline for a in labels if a.guideline],
    }


# The pair fields pair_record reads: a caller writing many records may load only these
# (``Pair.objects.only(*RECORD_FIELDS)``); tests check that no other field is fetched per record.
RECORD_FIELDS = ("id", "conversation", "response_a", "response_b", "external_id", "source_label", "source", "subset")


def pair_record(
    pair: Pair,
    verdict: Verdict,
    labels: Sequence[Annotation] = (),
    *,
    fmt: str = "conversational",
    include_labels: bool = False,
    evidence: list[dict[str, Any]] | None = None,
    dataset_version: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """One line of an export or a dataset version.

    With a label (``verdict.side``) the line has ``prompt``, ``chosen`` and ``rejected`` in
    ``fmt``'s shape (TRL loads it as is); without one (disputed, discarded) it has ``prompt``,
    ``response_a`` and ``response_b``. Every line says whether it is ``verified``, its ``state``,
    ``label``, ``strength``, ``via``, ``pool``, ``dataset_version``, the raw annotator ``majority``,
    ``votes``, attribute majorities and provenance; ``labels`` and ``evidence`` on request.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    record: dict[str, Any] = {
        "prompt": to_transcript(pair.conversation) if fmt == "standard" else pair.conversation,
    }
    side = verdict.side
    if side is not None:
        chosen, rejected = chosen_rejected(pair.response_a, pair.response_b, side)
        if fmt == "conversational":
            record["chosen"] = [{"role": "assistant", "content": chosen}]
            record["rejected"] = [{"role": "assistant", "content": rejected}]
        else:
            record["chosen"], record["rejected"] = chosen, rejected
        votes = Majority(None, None, dict(verdict.votes)).votes_for(side) if verdict.votes else {}
    else:
        record["response_a"], record["response_b"] = pair.response_a, pair.response_b
        votes = dict(verdict.votes)
    record.update(
        {
            "id": pair.external_id or str(pair.pk),
            "pair_id": pair.pk,
            "verified": verdict.verified,
            "state": verdict.state,
            "label": verdict.preference if verdict.strength else side,
            "strength": verdict.strength,
            "via": verdict.via,
            "pool": verdict.pool,
            "dataset_version": dataset_version,
            "majority": verdict.majority,
            "votes": votes,
            "n_annotators": len(labels),
            "agrees_with_source": (side == pair.source_label) if pair.source_label and side else None,
            "attributes": attribute_majorities(labels),
            "source": pair.source,
            "subset": pair.subset or "default",
        }
    )
    if verdict.reason:
        record["dispute_reason"] = verdict.reason
    if split is not None:
        record["split"] = split
    if include_labels:
        record["labels"] = [label_record(a) for a in labels]
    if evidence is not None:
        record["evidence"] = evidence
    return record
