"""The judges propose the five attributes for pairs without human labels; humans check them.

Each enabled pairwise judge is asked once per pair (:mod:`curation.judges.attributes`; cached and
logged as ``JudgeCall`` rows of kind ``attributes``, failures kept apart, like every call). The
readable answers are combined across judges and stored on the pair through annotation's service
(:func:`annotation.proposals.attribute_proposal_set`); the labelling page pre-fills them, marked as
a proposal, and each label records what the annotator changed. Runs go through the judges' shards
(purpose ``attributes``): :func:`attribute_proposals_create` starts one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from annotation.models import Pair, Project
from annotation.proposals import attribute_proposal_set
from curation.judges import attributes, client, prompt
from curation.judges.models import Judge, JudgeCall, JudgeRun
from curation.judges.services import (
    CallSpec,
    EngineStats,
    _run_calls,
    cache_key,
    judge_endpoint_parameters,
    judge_run_create,
    judges_enabled,
)
from curation.models import VerifiedPair


@dataclass
class ProposalResult:
    """One pair's combined proposal (None when no judge gave a readable one), per-judge notes, and
    whether a transient failure left it open (then nothing is stored and a resumed run asks again)."""

    values: dict[str, Any] | None
    per_judge: dict[int, dict[str, str]] = field(default_factory=dict)
    unfinished: bool = False
    reason: str = ""


def proposal_judges(judges: Sequence[Judge] | None = None) -> list[Judge]:
    """The judges that propose attributes: the enabled ones that answer in text (not pointwise)."""
    panel = list(judges) if judges is not None else judges_enabled()
    return [j for j in panel if j.mode != Judge.Mode.POINTWISE]


def _spec(judge: Judge, pair: Pair, project: Project) -> CallSpec:
    taxonomy, desired = list(project.taxonomy), list(project.desired_attributes)
    messages = attributes.build_attribute_messages(
        guideline=project.guidelines,
        taxonomy=taxonomy,
        desired=desired,
        pair=prompt.PairText(pair.conversation, pair.response_a, pair.response_b),
    )
    digest = prompt.prompt_hash(messages)
    parameters = {**judge_endpoint_parameters(judge), "kind": "attributes"}
    return CallSpec(
        judge=judge,
        pair_id=pair.pk,
        order="",
        sample_index=0,
        messages=messages,
        prompt_hash=digest,
        cache_key=cache_key(digest, parameters, 0),
        n_examples=0,
        kind=JudgeCall.Kind.ATTRIBUTES,
        schema=("pair_attributes", attributes.attribute_schema(taxonomy, desired)),
        check=lambda content: attributes.parse_attributes(content, taxonomy, desired).error,
    )


def pairs_propose_attributes(
    *,
    pairs: Sequence[Pair],
    judges: Sequence[Judge],
    policy: client.RetryPolicy | None = None,
    stats: EngineStats | None = None,
    store: bool = True,
) -> dict[int, ProposalResult]:
    """Ask ``judges`` for each pair's attributes, combine, and (``store``) write the proposals.

    A pair that got a human label meanwhile is left alone (its proposal would never be shown).
    """
    panel = proposal_judges(judges)
    if not panel:
        raise ValidationError("no enabled judge can propose attributes (pointwise judges cannot)")
    stats = stats if stats is not None else EngineStats()
    if not pairs:
        return {}
    project = pairs[0].project
    specs = {(p.pk, j.pk): _spec(j, p, project) for p in pairs for j in panel}
    answers = _run_calls(list(specs.values()), stats, policy)
    results: dict[int, ProposalResult] = {}
    for pair in pairs:
        readable: list[dict[str, Any]] = []
        result = ProposalResult(None)
        for judge in panel:
            answer = answers[specs[(pair.pk, judge.pk)].cache_key]
            if isinstance(answer, client.CallFailed):
                result.unfinished = result.unfinished or answer.transient
                result.per_judge[judge.pk] = {"result": "failed", "reason": str(answer)[:200]}
                continue
            parsed = attributes.parse_attributes(answer.raw, project.taxonomy, project.desired_attributes)
            if parsed.ok:
                readable.append(parsed.values)
                result.per_judge[judge.pk] = {"result": "proposed", "reason": ""}
            else:
                result.per_judge[judge.pk] = {"result": "failed", "reason": parsed.error}
        result.values = attributes.combine_proposals(readable)
        if result.values is None:
            result.reason = "; ".join(sorted({d["reason"] for d in result.per_judge.values() if d["reason"]}))[:200]
        elif store and not result.unfinished:
            source = "LLM judges: " + ", ".join(j.name for j in panel)
            try:
                attribute_proposal_set(pair_id=pair.pk, values=result.values, source=source)
            except ValidationError as exc:
                result.values, result.reason = None, "; ".join(exc.messages)[:200]
        results[pair.pk] = result
    return results


def unlabelled_pair_ids(project: Project, *, limit: int) -> list[int]:
    """Pairs to propose for: no label, no claim, not verified, no proposal yet (oldest first)."""
    verified = VerifiedPair.objects.filter(project=project).values("pair_id")
    return list(
        Pair.objects.filter(project=project, n_submitted=0, n_claimed=0, attribute_proposal__isnull=True)
        .exclude(pk__in=verified)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def attribute_proposals_create(*, project: Project, user: Any = None, limit: int = 500) -> JudgeRun:
    """Start a judges run proposing attributes for up to ``limit`` unlabelled pairs of the project."""
    panel = proposal_judges()
    if not panel:
        raise ValidationError("no enabled judge can propose attributes: an admin adds a (pairwise) judge")
    ids = unlabelled_pair_ids(project, limit=limit)
    if not ids:
        raise ValidationError("every pair is labelled, claimed, verified or already has a proposal")
    return judge_run_create(
        project=project, pair_ids=ids, purpose=JudgeRun.Purpose.ATTRIBUTES, judges=panel, created_by=user
    )
