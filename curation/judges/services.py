"""LLM judges: configuration, the call log and cache, the rate limiter, runs in shards, verdicts.

The engine is :func:`pairs_judge`: for each pair, every enabled judge answers ``samples`` times
(in one random stored order per sample, or in both orders), each answer is cached by
(prompt, model, parameters, sample index), the samples are voted within each judge and the judges
across the panel (:mod:`curation.judges.voting`). Everything that talks to a server goes through
:func:`curation.judges.client.call` (retries with backoff, jitter and Retry-After); failed attempts
are stored as :class:`JudgeCallFailure` and never read back as answers.

Entry points: :func:`judge_pairs` (stage 2, in-process), :func:`judge_run_create` (Celery shards:
a lead's question about one pair, D_silver labels for rounds, agreement measurement),
:func:`judge_shard_run` (the task body), :func:`judge_test_connection` (the admin page).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.models import Pair, Project
from config import jobs
from config.secrets import api_key_resolve
from curation.judges import client, prompt, voting
from curation.judges.examples import (
    LexicalRetriever,
    Retriever,
    VectorRetriever,
    examples_wanted,
    in_heldout,
    pick_examples,
    retrieval_text,
)
from curation.judges.jobs import SHARD
from curation.judges.models import (
    Judge,
    JudgeCall,
    JudgeCallFailure,
    JudgeOutcome,
    JudgeRateState,
    JudgeRun,
    JudgeShard,
    JudgeVerdict,
)
from curation.models import PairScore, VerifiedPair
from curation.verdicts import attribute_majorities, labels_by_pair

logger = logging.getLogger(__name__)

SECRET_FIELDS = ("api_key",)


class JudgeUnavailable(Exception):
    """A judge could not be reached for a whole chunk of pairs (transient); the shard stops, resumable."""


# --- configuration -------------------------------------------------------------------------------


def judge_api_key(judge: Judge) -> str:
    """The judge's key: from its environment variable, else its file, else the stored value ("" for none).

    Raises ValidationError naming what is missing when a configured variable or file is not there.
    """
    return api_key_resolve(env=judge.api_key_env, file=judge.api_key_file, stored=judge.api_key, what="the judge's key")


#: Pointwise mode asks for one token and this many of its most likely alternatives' log-probabilities.
POINTWISE_TOP_LOGPROBS = 20
NO_LOGPROBS = (
    "the server returned no logprobs, which pointwise mode needs (vLLM, llama-server and OpenAI send "
    "them; transformers serve does not): use a pairwise mode for this judge, or a server that sends logprobs"
)


def is_pointwise(judge: Judge) -> bool:
    return judge.mode == Judge.Mode.POINTWISE


def judge_endpoint(judge: Judge) -> client.Endpoint:
    """The judge as the HTTP client sees it (key resolved now, never stored elsewhere).

    Pointwise judges ask for one token with its top log-probabilities.
    """
    pointwise = is_pointwise(judge)
    return client.Endpoint(
        base_url=judge.base_url,
        model=judge.model,
        api_key=judge_api_key(judge),
        response_format=judge.response_format,
        temperature=judge.temperature,
        max_tokens=1 if pointwise else judge.max_tokens,
        timeout=judge.timeout_s,
        top_logprobs=POINTWISE_TOP_LOGPROBS if pointwise else 0,
    )


def judge_save(*, judge: Judge, api_key: str | None = None, clear_key: bool = False) -> Judge:
    """Validate and save a judge. ``api_key``: a new stored key (None or "" keeps the old one)."""
    if clear_key:
        judge.api_key = ""
    elif api_key:
        judge.api_key = api_key.strip()
    judge.full_clean()
    with transaction.atomic():
        judge.save()
    logger.info("judge %s saved (key %s)", judge.name, "set" if judge.has_key else "not set")
    return judge


TEST_PAIR = prompt.PairText(
    conversation=[{"role": "user", "content": "What is 2 + 2?"}],
    response_a="2 + 2 = 4.",
    response_b="2 + 2 = 5.",
)


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    latency_ms: int = 0
    raw: str = ""


def judge_test_connection(*, judge: Judge) -> ConnectionCheck:
    """Ask the judge one easy question (A is right); say whether it answered and whether we could read it.

    Not cached and not logged as a call: it checks the endpoint, not the judge's quality.
    """
    try:
        endpoint = judge_endpoint(judge)
    except ValidationError as exc:
        return ConnectionCheck(False, "; ".join(exc.messages))
    if is_pointwise(judge):
        return _test_pointwise(endpoint)
    messages = prompt.build_messages(guideline="", examples=[], target=TEST_PAIR, order="AB")
    try:
        reply = client.call(endpoint, messages, policy=client.RetryPolicy(retries=0))
    except client.CallFailed as exc:
        return ConnectionCheck(False, str(exc))
    judgement = prompt.parse_judgement(reply.content)
    if not judgement.ok:
        return ConnectionCheck(
            False, f"the server answered, but {judgement.error}", reply.latency_ms, reply.content[:500]
        )
    verdict = "chose the right answer" if judgement.choice == prompt.CHOICE_1 else "answered (not the right one)"
    return ConnectionCheck(True, f"connected; the model {verdict}", reply.latency_ms, reply.content[:500])


def _test_pointwise(endpoint: client.Endpoint) -> ConnectionCheck:
    scores = {}
    latency = 0
    for side in ("A", "B"):
        messages = prompt.build_pointwise_messages(guideline="", examples=[], target=TEST_PAIR, candidate=side)
        try:
            reply = client.call(endpoint, messages, policy=client.RetryPolicy(retries=0))
        except client.CallFailed as exc:
            return ConnectionCheck(False, str(exc))
        latency += reply.latency_ms
        if reply.top_logprobs is None:
            return ConnectionCheck(False, NO_LOGPROBS, latency, reply.content[:500])
        scores[side] = prompt.pointwise_score(reply.top_logprobs).score
    verdict = "scored the right answer higher" if scores["A"] > scores["B"] else "answered (not the right one)"
    shown = f"log-odds of good: A {scores['A']:.2f}, B {scores['B']:.2f}"
    return ConnectionCheck(True, f"connected; the model {verdict} ({shown})", latency)


# --- global rate limiter -------------------------------------------------------------------------


def rate_slot(*, judge_id: int, per_minute: int, now: Any = None) -> float:
    """Reserve the judge's next request slot; return the seconds to wait before using it (0: now).

    One row per judge holds the next free slot; the reservation is a row-locked read-modify-write,
    so every worker process (and host) shares the same limit. ``per_minute`` 0 means no limit.
    """
    if per_minute <= 0:
        return 0.0
    now = now or timezone.now()
    interval = timedelta(seconds=60.0 / per_minute)
    JudgeRateState.objects.get_or_create(judge_id=judge_id, defaults={"next_at": now})
    with transaction.atomic():
        # Row lock: two workers reserving at once get consecutive slots, not the same one.
        state = JudgeRateState.objects.select_for_update().get(judge_id=judge_id)
        slot = max(now, state.next_at)
        state.next_at = slot + interval
        state.save(update_fields=["next_at"])
    return max(0.0, (slot - now).total_seconds())


# --- examples ------------------------------------------------------------------------------------


@dataclass
class ExamplePool:
    """A project's human-verified examples (D_gold minus the held-out slice) and a retriever over them."""

    examples: dict[int, prompt.Example]
    retriever: Retriever | None


def _attributes_by_pair(pair_ids: list[int]) -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for pair_id, labels in labels_by_pair(pair_ids).items():
        if labels:
            attrs = attribute_majorities(labels)
            found[pair_id] = {
                "task_category": attrs["task_category"],
                "objectivity": attrs["objectivity"],
                "controversiality": attrs["controversiality"],
                "desired_attributes": attrs["desired_attributes"],
                "guideline": "; ".join(attrs["guidelines"][:2]),
            }
    return found


def _pair_text(pair: Pair) -> prompt.PairText:
    return prompt.PairText(conversation=pair.conversation, response_a=pair.response_a, response_b=pair.response_b)


def _seeded_order(*parts: object) -> str:
    """A random order drawn from a hash, so a rerun asks the very same question (and hits the cache)."""
    digest = hashlib.sha256(":".join(str(p) for p in ("judge-order", *parts)).encode()).digest()
    return "AB" if digest[0] % 2 == 0 else "BA"


def heldout_fraction() -> float:
    return float(getattr(settings, "JUDGE_HELDOUT_FRACTION", 0.2))


def example_pool_build(
    *, project: Project, retriever: str | None = None, keep: Callable[[prompt.Example], bool] | None = None
) -> ExamplePool:
    """D_gold pairs outside the held-out slice, as prompt examples, with a retriever over their texts.

    ``retriever``: ``embedding`` (packaged MiniLM, worker only) or ``lexical``; default
    ``settings.JUDGE_RETRIEVER``. ``keep``: only examples it accepts are indexed (attribute
    proposals keep those with verified attributes), so the k nearest are k usable ones.
    """
    fraction = heldout_fraction()
    rows = [
        v
        for v in VerifiedPair.objects.filter(project=project, pool=VerifiedPair.Pool.GOLD).select_related("pair")
        if not in_heldout(v.pair_id, fraction)
    ]
    attributes = _attributes_by_pair([v.pair_id for v in rows])
    examples = {
        v.pair_id: prompt.Example(
            pair=_pair_text(v.pair),
            side=v.side,
            strength=v.strength,
            attributes=attributes.get(v.pair_id, {}),
            order=_seeded_order("example", v.pair_id),
        )
        for v in rows
    }
    if keep is not None:
        examples = {pid: example for pid, example in examples.items() if keep(example)}
    if not examples:
        return ExamplePool(examples, None)
    ids = list(examples)
    texts = [retrieval_text(examples[i].pair.conversation, examples[i].attributes) for i in ids]
    kind = retriever or str(getattr(settings, "JUDGE_RETRIEVER", "embedding"))
    if kind == "lexical":
        return ExamplePool(examples, LexicalRetriever(ids, texts))
    if kind != "embedding":
        raise ValidationError(f"JUDGE_RETRIEVER must be 'embedding' or 'lexical', got {kind!r}")
    from rewardmodel.services import texts_embed  # torch loads inside: worker only

    return ExamplePool(examples, VectorRetriever(ids, texts, texts_embed))


def _rm_probabilities(pairs: Sequence[Pair]) -> dict[int, float]:
    """p of each pair's source label under the latest reward model that scored it (for the k rule)."""
    found: dict[int, float] = {}
    for score in PairScore.objects.filter(pair_id__in=[p.pk for p in pairs]).order_by("pair_id", "-scored_at"):
        if score.pair_id in found:
            continue
        pair = next(p for p in pairs if p.pk == score.pair_id)
        if pair.source_label in ("A", "B"):
            found[score.pair_id] = score.p_a if pair.source_label == "A" else 1.0 - score.p_a
    return found


# --- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallSpec:
    judge: Judge
    pair_id: int
    order: str
    sample_index: int
    messages: list[dict[str, str]]
    prompt_hash: str
    cache_key: str
    n_examples: int
    kind: str = JudgeCall.Kind.PAIR
    # Attribute proposals: the answer's schema, and a reader saying whether an answer is readable ("" = yes).
    schema: tuple[str, dict[str, Any]] | None = None
    check: Callable[[str], str] | None = None


def cache_key(prompt_hash: str, parameters: dict[str, Any], sample_index: int) -> str:
    """The cache key of one call: hash of (prompt, model and parameters, sample index)."""
    blob = json.dumps({"prompt": prompt_hash, "parameters": parameters, "sample": sample_index}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class PairResult:
    """The panel's outcome for one pair, each judge's outcome, and whether transient failures left it open."""

    outcome: voting.Outcome
    per_judge: dict[int, voting.Outcome] = field(default_factory=dict)
    unfinished: bool = False  # some call failed transiently: do not store; a retry may decide it


@dataclass
class EngineStats:
    calls: int = 0
    cached: int = 0
    failed: int = 0
    last_error: str = ""


def _specs_for(
    pair: Pair,
    judges: Sequence[Judge],
    pool: ExamplePool,
    guideline: str,
    p: float | None,
    both_orders: bool,
    target_attributes: dict[str, Any],
) -> list[CallSpec]:
    specs: list[CallSpec] = []
    target = _pair_text(pair)
    query = retrieval_text(pair.conversation, target_attributes)
    for judge in judges:
        k = examples_wanted(p, min(judge.max_examples, prompt.MAX_EXAMPLES))
        ids = pick_examples(pool.retriever, query, k, exclude={pair.pk}) if pool.retriever and k else []
        examples = [pool.examples[i] for i in ids]
        parameters = judge_endpoint_parameters(judge)
        if is_pointwise(judge):
            # Each candidate alone, once (a deterministic score: samples and orders add nothing).
            for side in ("A", "B"):
                messages = prompt.build_pointwise_messages(
                    guideline=guideline,
                    examples=examples,
                    target=target,
                    candidate=side,
                    target_attributes=target_attributes,
                )
                digest = prompt.prompt_hash(messages)
                specs.append(
                    CallSpec(
                        judge=judge,
                        pair_id=pair.pk,
                        order=side,
                        sample_index=0,
                        messages=messages,
                        prompt_hash=digest,
                        cache_key=cache_key(digest, parameters, 0),
                        n_examples=len(examples),
                        kind=JudgeCall.Kind.POINTWISE,
                    )
                )
            continue
        for sample in range(judge.samples):
            orders = ("AB", "BA") if both_orders or judge.mode == Judge.Mode.BOTH else None
            for order in orders or (_seeded_order(judge.pk, pair.pk, sample),):
                messages = prompt.build_messages(
                    guideline=guideline,
                    examples=examples,
                    target=target,
                    order=order,
                    target_attributes=target_attributes,
                )
                digest = prompt.prompt_hash(messages)
                specs.append(
                    CallSpec(
                        judge=judge,
                        pair_id=pair.pk,
                        order=order,
                        sample_index=sample,
                        messages=messages,
                        prompt_hash=digest,
                        cache_key=cache_key(digest, parameters, sample),
                        n_examples=len(examples),
                    )
                )
    return specs


def judge_endpoint_parameters(judge: Judge) -> dict[str, Any]:
    """What besides the prompt shapes an answer (the cache key's parameters; never the key)."""
    parameters: dict[str, Any] = {
        "base_url": judge.base_url.rstrip("/"),
        "model": judge.model,
        "temperature": judge.temperature,
        "max_tokens": judge.max_tokens,
        "response_format": judge.response_format,
    }
    if is_pointwise(judge):
        parameters.update(max_tokens=1, top_logprobs=POINTWISE_TOP_LOGPROBS, mode="pointwise")
    return parameters


def _vote_of(call: JudgeCall) -> voting.Vote:
    if call.status != JudgeCall.Status.OK or not call.side:
        return voting.Vote(voting.FAILED)
    return voting.Vote(call.side, call.strength)


def _store_answer(spec: CallSpec, reply: client.Reply) -> JudgeCall:
    if spec.kind == JudgeCall.Kind.POINTWISE:
        return _save_call(_pointwise_call(spec, reply))
    if spec.kind == JudgeCall.Kind.ATTRIBUTES:
        error = spec.check(reply.content) if spec.check is not None else ""
        return _save_call(
            JudgeCall(
                judge=spec.judge,
                pair_id=spec.pair_id,
                cache_key=spec.cache_key,
                prompt_hash=spec.prompt_hash,
                order="",
                sample_index=0,
                n_examples=spec.n_examples,
                kind=JudgeCall.Kind.ATTRIBUTES,
                status=JudgeCall.Status.UNPARSED if error else JudgeCall.Status.OK,
                raw=reply.content[:20_000],
                parse_error=error[:200],
                latency_ms=reply.latency_ms,
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                attempts=len(reply.failures) + 1,
            )
        )
    judgement = prompt.parse_judgement(reply.content)
    side = prompt.choice_to_side(judgement.choice, spec.order) if judgement.ok else ""
    call = JudgeCall(
        judge=spec.judge,
        pair_id=spec.pair_id,
        cache_key=spec.cache_key,
        prompt_hash=spec.prompt_hash,
        order=spec.order,
        sample_index=spec.sample_index,
        n_examples=spec.n_examples,
        status=JudgeCall.Status.OK if judgement.ok else JudgeCall.Status.UNPARSED,
        raw=reply.content[:20_000],
        choice=judgement.choice,
        side=side,
        strength=judgement.strength,
        parse_error=judgement.error[:200],
        latency_ms=reply.latency_ms,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        attempts=len(reply.failures) + 1,
    )
    return _save_call(call)


def _save_call(call: JudgeCall) -> JudgeCall:
    try:
        with transaction.atomic():
            call.save()
    except IntegrityError:  # another worker answered the same question first: its answer is the cache
        return JudgeCall.objects.get(cache_key=call.cache_key)
    return call


def _pointwise_call(spec: CallSpec, reply: client.Reply) -> JudgeCall:
    """A pointwise answer (its logprobs are known to be there): the score and the top tokens, as raw."""
    top = reply.top_logprobs or {}
    scored = prompt.pointwise_score(top)
    return JudgeCall(
        judge=spec.judge,
        pair_id=spec.pair_id,
        cache_key=spec.cache_key,
        prompt_hash=spec.prompt_hash,
        order=spec.order,
        sample_index=spec.sample_index,
        n_examples=spec.n_examples,
        kind=JudgeCall.Kind.POINTWISE,
        score=scored.score,
        status=JudgeCall.Status.OK,
        raw=json.dumps({"content": reply.content[:200], "top_logprobs": top}, ensure_ascii=False)[:20_000],
        parse_error="good or bad not among the top tokens; bounded" if scored.bounded else "",
        latency_ms=reply.latency_ms,
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        attempts=len(reply.failures) + 1,
    )


def _store_failures(spec: CallSpec, failures: Sequence[client.Attempt]) -> None:
    JudgeCallFailure.objects.bulk_create(
        [
            JudgeCallFailure(
                judge=spec.judge,
                pair_id=spec.pair_id,
                cache_key=spec.cache_key,
                prompt_hash=spec.prompt_hash,
                order=spec.order,
                sample_index=spec.sample_index,
                error=f.error[:500],
                status_code=f.status,
                transient=f.transient,
                latency_ms=f.latency_ms,
                waited_s=f.waited_s,
            )
            for f in failures
        ]
    )


def _run_calls(
    specs: Sequence[CallSpec], stats: EngineStats, policy: client.RetryPolicy | None
) -> dict[str, JudgeCall | client.CallFailed]:
    """Answer every spec: from the cache, else over HTTP (``concurrency`` in flight per judge).

    Only the main thread touches the database: it reserves each call's rate-limit slot, and it
    stores answers and failures as the threads return them.
    """
    found: dict[str, JudgeCall | client.CallFailed] = {
        c.cache_key: c for c in JudgeCall.objects.filter(cache_key__in=[s.cache_key for s in specs])
    }
    stats.cached += sum(1 for s in specs if s.cache_key in found)
    todo: dict[str, CallSpec] = {}
    for spec in specs:
        if spec.cache_key not in found:
            todo.setdefault(spec.cache_key, spec)
    by_judge: dict[int, list[CallSpec]] = {}
    for spec in todo.values():
        by_judge.setdefault(spec.judge.pk, []).append(spec)
    for judge_specs in by_judge.values():
        judge = judge_specs[0].judge
        try:
            endpoint = judge_endpoint(judge)
        except ValidationError as exc:
            failure = client.Attempt("; ".join(exc.messages), None, False, 0)
            for spec in judge_specs:
                _store_failures(spec, [failure])
                found[spec.cache_key] = client.CallFailed([failure])
                stats.failed += 1
            stats.last_error = failure.error
            continue
        with ThreadPoolExecutor(max_workers=judge.concurrency, thread_name_prefix=f"judge-{judge.pk}") as pool:
            futures: list[tuple[CallSpec, Future[client.Reply]]] = []
            for spec in judge_specs:
                wait = rate_slot(judge_id=judge.pk, per_minute=judge.rate_limit_per_minute)
                if wait:
                    time.sleep(wait)
                futures.append(
                    (spec, pool.submit(client.call, endpoint, spec.messages, policy=policy, schema=spec.schema))
                )
            for spec, future in futures:
                stats.calls += 1
                try:
                    reply = future.result()
                except client.CallFailed as exc:
                    _store_failures(spec, exc.failures)
                    found[spec.cache_key] = exc
                    stats.failed += 1
                    stats.last_error = str(exc)
                    continue
                if reply.failures:
                    _store_failures(spec, reply.failures)
                if spec.kind == JudgeCall.Kind.POINTWISE and reply.top_logprobs is None:
                    # Said plainly, never a silent fallback to reading the text; retrying cannot fix it.
                    missing = client.Attempt(NO_LOGPROBS, None, False, reply.latency_ms)
                    _store_failures(spec, [missing])
                    found[spec.cache_key] = client.CallFailed([missing])
                    stats.failed += 1
                    stats.last_error = NO_LOGPROBS
                    continue
                found[spec.cache_key] = _store_answer(spec, reply)
    return found


def pairs_judge(
    *,
    pairs: Sequence[Pair],
    judges: Sequence[Judge],
    both_orders: bool = False,
    pool: ExamplePool | None = None,
    policy: client.RetryPolicy | None = None,
    stats: EngineStats | None = None,
) -> dict[int, PairResult]:
    """Judge ``pairs`` with the panel ``judges``; every answer is logged and cached (see module docstring).

    A pair some of whose calls failed transiently (timeouts, 429 after retries, server down) is
    ``unfinished``: its outcome is what the other answers say, but callers that can retry should.
    """
    if not judges:
        raise ValidationError("no judge is enabled; an admin adds one on the judges page")
    stats = stats if stats is not None else EngineStats()
    results: dict[int, PairResult] = {}
    if not pairs:
        return results
    project = pairs[0].project
    pool = pool or example_pool_build(project=project)
    probabilities = _rm_probabilities(pairs)
    attributes = _attributes_by_pair([p.pk for p in pairs])
    specs_by_pair = {
        pair.pk: _specs_for(
            pair,
            judges,
            pool,
            project.guidelines,
            probabilities.get(pair.pk),
            both_orders,
            attributes.get(pair.pk, {}),
        )
        for pair in pairs
    }
    answers = _run_calls([s for specs in specs_by_pair.values() for s in specs], stats, policy)
    for pair in pairs:
        per_judge: dict[int, voting.Outcome] = {}
        unfinished = False
        for judge in judges:
            specs = [s for s in specs_by_pair[pair.pk] if s.judge.pk == judge.pk]
            if is_pointwise(judge):
                outcome, transient = _pointwise_outcome(specs, answers)
                per_judge[judge.pk] = outcome
                unfinished = unfinished or transient
                continue
            votes: dict[str, list[voting.Vote]] = {"AB": [], "BA": [], "any": []}
            for spec in specs:
                answer = answers[spec.cache_key]
                if isinstance(answer, client.CallFailed):
                    unfinished = unfinished or answer.transient
                    vote = voting.Vote(voting.FAILED)
                else:
                    vote = _vote_of(answer)
                votes[spec.order].append(vote)
                votes["any"].append(vote)
            if both_orders or judge.mode == Judge.Mode.BOTH:
                per_judge[judge.pk] = voting.combine_orders(
                    voting.judge_vote(votes["AB"]), voting.judge_vote(votes["BA"])
                )
            else:
                per_judge[judge.pk] = voting.judge_vote(votes["any"])
        results[pair.pk] = PairResult(voting.panel_vote(list(per_judge.values())), per_judge, unfinished)
    return results


def _pointwise_outcome(
    specs: Sequence[CallSpec], answers: dict[str, JudgeCall | client.CallFailed]
) -> tuple[voting.Outcome, bool]:
    """A pointwise judge's outcome from its scores of A and B, and whether a failure was transient."""
    scores: dict[str, float] = {}
    for spec in specs:
        answer = answers[spec.cache_key]
        if isinstance(answer, client.CallFailed):
            return voting.Outcome(voting.FAILED, counts={voting.FAILED: 1}, reason=str(answer)[:200]), answer.transient
        if answer.score is None:
            return voting.Outcome(voting.FAILED, counts={voting.FAILED: 1}, reason="no score stored"), False
        scores[spec.order] = answer.score
    return voting.pointwise_vote(scores["A"], scores["B"]), False


def judges_enabled() -> list[Judge]:
    return list(Judge.objects.filter(enabled=True).order_by("pk"))


def judge_pairs(pair_ids: Sequence[int], *, judges: Sequence[Judge] | None = None) -> dict[int, voting.Outcome]:
    """Stage 2's entry point: the panel's outcome (A, B, tie or failed) for each pair, in-process.

    Pairs may belong to several projects (each is prompted with its own guideline and examples).
    Answers are cached, so asking again costs nothing; a pair whose calls failed transiently comes
    back ``failed`` with the reason, never as a side. Judge verdicts are not written here.
    """
    panel = list(judges) if judges is not None else judges_enabled()
    pairs = list(Pair.objects.filter(pk__in=list(pair_ids)).select_related("project").order_by("pk"))
    outcomes: dict[int, voting.Outcome] = {}
    for project_id in sorted({p.project_id for p in pairs}):
        group = [p for p in pairs if p.project_id == project_id]
        for pid, result in pairs_judge(pairs=group, judges=panel).items():
            outcomes[pid] = (
                voting.Outcome(voting.FAILED, counts=result.outcome.counts, reason="a call failed; retry later")
                if result.unfinished and not result.outcome.decided
                else result.outcome
            )
    missing = [pid for pid in pair_ids if pid not in outcomes]
    for pid in missing:
        outcomes[pid] = voting.Outcome(voting.FAILED, reason="no such pair")
    return outcomes


# --- runs and shards -----------------------------------------------------------------------------


def shard_size() -> int:
    return int(getattr(settings, "JUDGE_SHARD_SIZE", 200))


def judge_run_create(
    *,
    project: Project,
    pair_ids: Sequence[int],
    purpose: str,
    judges: Sequence[Judge] | None = None,
    created_by: Any = None,
    write_verdicts: bool | None = None,
    force_both_orders: bool | None = None,
) -> JudgeRun:
    """Create a run over ``pair_ids`` (deduplicated, this project's only), cut into shards, dispatched on commit.

    Raises ValidationError naming the problem: no judges, no pairs, pairs of another project, an
    unknown purpose.
    """
    if purpose not in JudgeRun.Purpose.values:
        raise ValidationError(f"unknown purpose {purpose!r}; use one of {', '.join(JudgeRun.Purpose.values)}")
    panel = list(judges) if judges is not None else judges_enabled()
    if not panel:
        raise ValidationError("no judge is enabled; an admin adds one on the judges page")
    wanted = list(dict.fromkeys(int(i) for i in pair_ids))
    if not wanted:
        raise ValidationError("no pairs to judge")
    found = set(Pair.objects.filter(project=project, pk__in=wanted).values_list("pk", flat=True))
    stray = [i for i in wanted if i not in found]
    if stray:
        raise ValidationError(f"pairs not in project {project.name}: {', '.join(map(str, stray[:10]))}")
    size = shard_size()
    with transaction.atomic():
        run = JudgeRun.objects.create(
            project=project,
            purpose=purpose,
            n_pairs=len(wanted),
            write_verdicts=purpose == JudgeRun.Purpose.SILVER if write_verdicts is None else write_verdicts,
            force_both_orders=purpose == JudgeRun.Purpose.EVAL if force_both_orders is None else force_both_orders,
            created_by=created_by,
        )
        run.judges.set(panel)
        shards = JudgeShard.objects.bulk_create(
            [
                JudgeShard(run=run, index=n, pair_ids=wanted[start : start + size], **jobs.queued_fields())
                for n, start in enumerate(range(0, len(wanted), size))
            ]
        )
        for shard in shards:
            jobs.dispatch_on_commit(SHARD, shard.pk)
    return run


def judge_run_resume(*, run: JudgeRun) -> int:
    """Requeue the run's failed shards (finished pairs are kept); returns how many were requeued."""
    with transaction.atomic():
        ids = list(run.shards.filter(status=JudgeShard.Status.FAILED).values_list("pk", flat=True))
        JudgeShard.objects.filter(pk__in=ids, status=JudgeShard.Status.FAILED).update(
            status=JudgeShard.Status.QUEUED, error="", attempts=0, finished_at=None, **jobs.queued_fields()
        )
        for pk in ids:
            jobs.dispatch_on_commit(SHARD, pk)
    return len(ids)


def _write_outcome(run: JudgeRun, pair: Pair, result: PairResult) -> None:
    outcome = result.outcome
    with transaction.atomic():
        _, created = JudgeOutcome.objects.get_or_create(
            run=run,
            pair=pair,
            defaults={
                "result": outcome.result,
                "strength": outcome.strength if outcome.decided else "",
                "per_judge": {str(k): v.as_dict() for k, v in result.per_judge.items()},
                "reason": outcome.reason[:200],
            },
        )
        if created and run.write_verdicts and outcome.decided:
            JudgeVerdict.objects.update_or_create(
                pair=pair,
                defaults={
                    "project_id": pair.project_id,
                    "side": outcome.result,
                    "strength": outcome.strength or "slightly",
                    "run": run,
                    "votes": outcome.counts,
                    "decided_at": timezone.now(),
                },
            )


def _proposal_as_result(result: Any) -> PairResult:
    """An attribute proposal as a shard's pair result: ``proposed`` or ``failed`` (with the reason)."""
    per_judge = {
        jid: voting.Outcome(voting.FAILED, reason=d["reason"]) if d["result"] == "failed" else _PROPOSED
        for jid, d in result.per_judge.items()
    }
    outcome = _PROPOSED if result.values is not None else voting.Outcome(voting.FAILED, reason=result.reason)
    return PairResult(outcome, per_judge, result.unfinished)


#: The outcome row of a pair whose attributes were proposed (attribute runs write no sides).
_PROPOSED = voting.Outcome("proposed")


def judge_shard_run(
    *,
    shard_id: int,
    chunk: int = 16,
    policy: client.RetryPolicy | None = None,
    on_chunk: Callable[[], None] = lambda: None,
) -> JudgeShard | None:
    """Work one shard (the task body): claim it, judge its pairs without an outcome, chunk by chunk.

    A pair left unfinished by transient failures (server down, 429 after retries) gets no outcome;
    the shard then ends ``failed`` with the reason and resuming the run picks those pairs up again
    (answers already cached cost nothing). Returns the shard, or None when it was not claimable.
    """
    attempt = jobs.claim(SHARD, shard_id)
    if attempt is None:
        return None
    shard = JudgeShard.objects.select_related("run", "run__project").get(pk=shard_id)
    run = shard.run
    panel = list(run.judges.filter(enabled=True).order_by("pk"))
    stats = EngineStats()
    unfinished = 0
    try:
        with jobs.beating(SHARD, shard_id, attempt):
            if not panel:
                raise ValidationError("every judge of this run is disabled or deleted")
            if run.purpose == JudgeRun.Purpose.ATTRIBUTES:
                from curation.judges.proposals import attribute_example_pool

                # Examples with verified attributes only (None when the setting asks for none).
                pool = attribute_example_pool(project=run.project)
            else:
                pool = example_pool_build(project=run.project)
            done_ids = set(run.outcomes.filter(pair_id__in=shard.pair_ids).values_list("pair_id", flat=True))
            todo = [pid for pid in shard.pair_ids if pid not in done_ids]
            for start in range(0, len(todo), chunk):
                pairs = list(Pair.objects.filter(pk__in=todo[start : start + chunk]).select_related("project"))
                chunk_stats = EngineStats()
                if run.purpose == JudgeRun.Purpose.ATTRIBUTES:
                    from curation.judges.proposals import pairs_propose_attributes

                    proposed = pairs_propose_attributes(
                        pairs=pairs, judges=panel, pool=pool, policy=policy, stats=chunk_stats
                    )
                    results = {pid: _proposal_as_result(r) for pid, r in proposed.items()}
                else:
                    results = pairs_judge(
                        pairs=pairs,
                        judges=panel,
                        both_orders=run.force_both_orders,
                        pool=pool,
                        policy=policy,
                        stats=chunk_stats,
                    )
                stats.calls += chunk_stats.calls
                stats.failed += chunk_stats.failed
                stats.last_error = chunk_stats.last_error or stats.last_error
                if chunk_stats.calls and chunk_stats.failed == chunk_stats.calls:
                    # Every call of the chunk failed: the server is down or refusing us; stop, keep what is done.
                    raise JudgeUnavailable(
                        f"every call failed ({chunk_stats.last_error}); resume the run once the judge is back "
                        "(finished pairs and answers are kept)"
                    )
                for pair in pairs:
                    if results[pair.pk].unfinished:
                        unfinished += 1
                    else:
                        _write_outcome(run, pair, results[pair.pk])
                n_done = run.outcomes.filter(pair_id__in=shard.pair_ids).count()
                if not jobs.owns(SHARD, shard_id, attempt).update(n_done=n_done):
                    return None  # reaped meanwhile; the next attempt continues
                on_chunk()
    except (ValidationError, JudgeUnavailable) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        jobs.finish(SHARD, shard_id, attempt, JudgeShard.Status.FAILED, error=message[:2000])
        return JudgeShard.objects.get(pk=shard_id)
    except Exception as exc:  # a bug or a lost database: end failed with the reason, never stuck running
        logger.exception("judge shard %s failed", shard_id)
        jobs.finish(SHARD, shard_id, attempt, JudgeShard.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        return JudgeShard.objects.get(pk=shard_id)
    if unfinished:
        jobs.finish(
            SHARD,
            shard_id,
            attempt,
            JudgeShard.Status.FAILED,
            error=(
                f"{unfinished} pairs could not be judged (last error: {stats.last_error}); "
                "resume the run to retry them (answers already received are kept)"
            )[:2000],
        )
    else:
        jobs.finish(SHARD, shard_id, attempt, JudgeShard.Status.DONE, error="")
    return JudgeShard.objects.get(pk=shard_id)


def judge_ask(*, pair: Pair, user: Any) -> JudgeRun:
    """A lead asks the enabled judges about one pair (any pair; nothing is written to its labels)."""
    return judge_run_create(
        project=pair.project, pair_ids=[pair.pk], purpose=JudgeRun.Purpose.ASK, created_by=user, write_verdicts=False
    )


def judge_eval_create(*, project: Project, user: Any, limit: int = 200) -> JudgeRun:
    """Measure the judges on the held-out slice of D_gold (both orders, so position bias is measured too).

    Up to ``limit`` pairs, chosen by a fixed hash so repeated measurements reuse cached answers.
    """
    fraction = heldout_fraction()
    ids = [
        pid
        for pid in VerifiedPair.objects.filter(project=project, pool=VerifiedPair.Pool.GOLD)
        .order_by("pair_id")
        .values_list("pair_id", flat=True)
        if in_heldout(pid, fraction)
    ]
    if not ids:
        raise ValidationError(
            f"the held-out slice of D_gold is empty ({fraction:.0%} of verified pairs); verify more pairs first"
        )
    rng = random.Random(f"judge-eval:{project.pk}")
    if len(ids) > limit:
        ids = sorted(rng.sample(ids, limit))
    return judge_run_create(
        project=project, pair_ids=ids, purpose=JudgeRun.Purpose.EVAL, created_by=user, write_verdicts=False
    )
