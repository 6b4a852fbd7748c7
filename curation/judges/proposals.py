"""The judges propose the five attributes for pairs without human labels; humans check them.

Each enabled pairwise judge is asked once per pair (:mod:`curation.judges.attributes`; cached and
logged as ``JudgeCall`` rows of kind ``attributes``, failures kept apart, like every call). The
readable answers are combined across judges and stored on the pair through annotation's service
(:func:`annotation.proposals.attribute_proposal_set`); the labelling page pre-fills them, marked as
a proposal, and each label records what the annotator changed. Runs go through the judges' shards
(purpose ``attributes``): :func:`attribute_proposals_create` starts one.

Examples: like a pairwise judge's prompt, the attribute prompt shows up to
``JUDGE_ATTRIBUTE_EXAMPLES`` (0..8, also capped by the judge's ``max_examples``) human-verified
pairs with the attribute majorities of their labels, retrieved as the most similar to the target
with the same retrieval text, retriever and k rule (:func:`curation.judges.examples.examples_wanted`)
the pairwise prompts use, most similar first. Only D_gold pairs outside the judges' held-out slice
whose labels agree on a task category of the project's taxonomy, an objectivity and a
controversiality are examples; never the target itself. The examples are part of the prompt, so
they are part of its hash and of the call's cache key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from annotation.models import Pair, Project
from annotation.proposals import attribute_proposal_set
from curation.judges import attributes, client, prompt
from curation.judges.examples import examples_wanted, pick_examples, retrieval_text
from curation.judges.models import Judge, JudgeCall, JudgeRun
from curation.judges.services import (
    CallSpec,
    EngineStats,
    ExamplePool,
    _rm_probabilities,
    _run_calls,
    cache_key,
    example_pool_build,
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


def attribute_examples_max() -> int:
    """How many examples an attribute prompt shows at most (``JUDGE_ATTRIBUTE_EXAMPLES``, 0..8)."""
    return min(int(getattr(settings, "JUDGE_ATTRIBUTE_EXAMPLES", prompt.MAX_EXAMPLES)), prompt.MAX_EXAMPLES)


def _verified_attributes(example: prompt.Example, project: Project) -> dict[str, Any] | None:
    """The example's attribute majorities as an answer in the project's terms, or None when unusable.

    Unusable: no labels, or no majority on the task category (or one no longer in the taxonomy),
    objectivity or controversiality: an example must show a whole, valid answer.
    """
    values = example.attributes
    if not values or values.get("task_category") not in project.taxonomy:
        return None
    if values.get("objectivity") not in attributes.OBJECTIVITY:
        return None
    if values.get("controversiality") not in attributes.CONTROVERSIALITY:
        return None
    desired = set(values.get("desired_attributes") or [])
    return {
        "task_category": values["task_category"],
        "objectivity": values["objectivity"],
        "controversiality": values["controversiality"],
        "desired_attributes": [a for a in project.desired_attributes if a in desired],
        "guideline": " ".join(str(values.get("guideline") or "").split())[:300],
    }


def attribute_example_pool(*, project: Project, retriever: str | None = None) -> ExamplePool:
    """The examples attribute prompts retrieve from: D_gold outside the held-out slice, verified attributes only.

    Empty (and no retriever built, nor an encoder loaded) when ``JUDGE_ATTRIBUTE_EXAMPLES`` is 0.
    """
    if attribute_examples_max() <= 0:
        return ExamplePool({}, None)
    return example_pool_build(
        project=project, retriever=retriever, keep=lambda e: _verified_attributes(e, project) is not None
    )


def attribute_examples_for(
    pair: Pair, project: Project, pool: ExamplePool, k_max: int, p: float | None
) -> list[attributes.AttributeExample]:
    """The examples for ``pair``: the k(p) most similar usable ones (k_max at most), most similar first."""
    k = examples_wanted(p, min(k_max, prompt.MAX_EXAMPLES))
    if not k or pool.retriever is None:
        return []
    ids = pick_examples(pool.retriever, retrieval_text(pair.conversation), k, exclude={pair.pk})
    found = []
    for pid in ids:
        values = _verified_attributes(pool.examples[pid], project)
        if values is not None:
            found.append(attributes.AttributeExample(pool.examples[pid].pair.conversation, values))
    return found


def _spec(judge: Judge, pair: Pair, project: Project, examples: Sequence[attributes.AttributeExample] = ()) -> CallSpec:
    taxonomy, desired = list(project.taxonomy), list(project.desired_attributes)
    messages = attributes.build_attribute_messages(
        guideline=project.guidelines,
        taxonomy=taxonomy,
        desired=desired,
        pair=prompt.PairText(pair.conversation, pair.response_a, pair.response_b),
        examples=examples,
    )
    # The examples are in the messages, so in the prompt hash and the cache key.
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
        n_examples=len(examples),
        kind=JudgeCall.Kind.ATTRIBUTES,
        schema=("pair_attributes", attributes.attribute_schema(taxonomy, desired)),
        check=lambda content: attributes.parse_attributes(content, taxonomy, desired).error,
    )


def pairs_propose_attributes(
    *,
    pairs: Sequence[Pair],
    judges: Sequence[Judge],
    pool: ExamplePool | None = None,
    policy: client.RetryPolicy | None = None,
    stats: EngineStats | None = None,
    store: bool = True,
) -> dict[int, ProposalResult]:
    """Ask ``judges`` for each pair's attributes, combine, and (``store``) write the proposals.

    ``pool``: the examples to retrieve from (:func:`attribute_example_pool`, built here when None).
    A pair that got a human label meanwhile is left alone (its proposal would never be shown).
    """
    panel = proposal_judges(judges)
    if not panel:
        raise ValidationError("no enabled judge can propose attributes (pointwise judges cannot)")
    stats = stats if stats is not None else EngineStats()
    if not pairs:
        return {}
    project = pairs[0].project
    pool = pool if pool is not None else attribute_example_pool(project=project)
    k_max = attribute_examples_max()
    probabilities = _rm_probabilities(pairs) if pool.retriever is not None else {}
    specs: dict[tuple[int, int], CallSpec] = {}
    for pair in pairs:
        p = probabilities.get(pair.pk)
        # Retrieved once per pair for the largest panel k; a judge with a smaller cap takes a prefix
        # (k(p) grows with k_max, so the smaller set is the most similar part of the larger one).
        widest = max((min(k_max, j.max_examples) for j in panel), default=0)
        nearest = attribute_examples_for(pair, project, pool, widest, p)
        for judge in panel:
            k = examples_wanted(p, min(k_max, judge.max_examples, prompt.MAX_EXAMPLES))
            specs[(pair.pk, judge.pk)] = _spec(judge, pair, project, nearest[:k])
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
