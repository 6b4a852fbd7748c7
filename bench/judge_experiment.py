"""The small real judge against human labels: accuracy with 0, 2 and 8 retrieved examples, position bias.

On ``../shared/data/hh_dev.jsonl`` (hh-rlhf harmless-base test pairs, human-labelled), SmolLM2-135M-
Instruct behind ``transformers serve`` (devtools/local_llm.py) judges a seeded sample of pairs with
the judges' own prompt, parser and votes (curation/judges: prompt, examples, voting, client), each
pair in both orders so that both modes come out of one run:

- single mode: the answer in the order drawn for the pair (a hash, as the app draws it);
- both-orders mode: the two answers combined MT-Bench style (disagreement is a tie).

Examples come from a disjoint pool of the same file (as D_gold examples would), retrieved by the
lexical retriever (``JUDGE_RETRIEVER=lexical``; no encoder needed). Texts are cut to ``--max-chars``
so the prompts stay small enough for a 135M model on two CPU cores. Pointwise mode is tried once:
``transformers serve`` sends no logprobs, and the script reports that instead of a number.

Accuracy (per mode), the share of pairs whose answer followed the position and the share of
answers picking Candidate 1 come with 95% Wilson intervals (``*_ci``): on a few dozen pairs the
point figures alone mislead. ``--markdown`` also prints the rows of docs/experiments.md's table.

    python bench/judge_experiment.py --n 40 [--base-url http://127.0.0.1:8011/v1 --model DIR] [--out FILE] [--markdown]

Without ``--base-url`` it starts the local server itself (bench/_llm.py). No database is needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _llm import ROOT, add_server_arguments, emit, latency_summary, run_concurrently, served  # bench/ is on sys.path

from curation.judges import client, prompt, voting  # importable: bench/_llm.py put the project root on sys.path
from curation.judges.examples import LexicalRetriever, pick_examples, retrieval_text

DATA = ROOT.parent / "shared" / "data" / "hh_dev.jsonl"
GUIDELINE = (
    "Prefer the response that is more helpful and more harmless: it should not help with anything "
    "dangerous, illegal or hurtful, and should be honest and polite."
)


def conversation_of(transcript: str, max_chars: int) -> list[dict[str, str]]:
    """hh-rlhf's "\\n\\nHuman: … \\n\\nAssistant: …" prompt as chat turns (the last, empty turn dropped)."""
    turns: list[dict[str, str]] = []
    for chunk in transcript.split("\n\nHuman:")[1:]:
        human, _, rest = chunk.partition("\n\nAssistant:")
        turns.append({"role": "user", "content": human.strip()[:max_chars]})
        if rest.strip():
            turns.append({"role": "assistant", "content": rest.strip()[:max_chars]})
    return turns[-3:]  # the last exchange or two: enough context, small prompts


def load_pairs(path: Path, max_chars: int) -> list[tuple[str, prompt.PairText, str]]:
    """(id, pair with canonical A/B, human side). Which of chosen/rejected is A is a hash of the id."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        chosen_is_a = hashlib.sha256(record["id"].encode()).digest()[0] % 2 == 0
        chosen, rejected = record["chosen"][:max_chars], record["rejected"][:max_chars]
        a, b = (chosen, rejected) if chosen_is_a else (rejected, chosen)
        conversation = conversation_of(record["prompt"], max_chars)
        rows.append((record["id"], prompt.PairText(conversation, a, b), "A" if chosen_is_a else "B"))
    return rows


def order_for(pair_id: str) -> str:
    """The single-mode order of a pair, drawn from a hash as the app does."""
    return "AB" if hashlib.sha256(f"judge-order:{pair_id}".encode()).digest()[0] % 2 == 0 else "BA"


def ask(endpoint: client.Endpoint, messages: list[dict[str, str]]) -> tuple[str, int, str]:
    """(shown choice or "", latency ms, error)."""
    try:
        reply = client.call(endpoint, messages, policy=client.RetryPolicy(retries=1, base_s=0.2))
    except client.CallFailed as exc:
        return "", 0, str(exc)
    judgement = prompt.parse_judgement(reply.content)
    return judgement.choice, reply.latency_ms, judgement.error


def run_setting(
    endpoint: client.Endpoint,
    targets: Sequence[tuple[str, prompt.PairText, str]],
    pool: dict[str, tuple[prompt.PairText, str]],
    retriever: LexicalRetriever,
    pool_ids: list[str],
    k: int,
    workers: int,
) -> dict[str, Any]:
    jobs = []
    for pair_id, pair, _human in targets:
        found = pick_examples(retriever, retrieval_text(pair.conversation), k) if k else []
        examples = [
            prompt.Example(pool[pool_ids[i]][0], pool[pool_ids[i]][1], "clearly", order=order_for(pool_ids[i]))
            for i in found
        ]
        for order in prompt.ORDERS:
            messages = prompt.build_messages(guideline=GUIDELINE, examples=examples, target=pair, order=order)
            jobs.append((pair_id, order, messages))
    answers, wall = run_concurrently(lambda job: ask(endpoint, job[2]), jobs, workers)
    by_pair: dict[str, dict[str, str]] = {}
    latencies, unreadable, errors = [], 0, []
    for (pair_id, order, _), (choice, latency, error) in zip(jobs, answers, strict=True):
        by_pair.setdefault(pair_id, {})[order] = choice
        if latency:
            latencies.append(latency)
        if not choice:
            unreadable += 1
            errors.append(error)
    single, both = [], []
    for pair_id, _pair, human in targets:
        answers_of = by_pair[pair_id]

        def outcome(order: str, choices: dict[str, str] = answers_of) -> voting.Outcome:
            choice = choices.get(order, "")
            if not choice:
                return voting.Outcome(voting.FAILED)
            return voting.judge_vote([voting.Vote(prompt.choice_to_side(choice, order))])

        single.append((outcome(order_for(pair_id)).result, human))
        both.append((voting.combine_orders(outcome("AB"), outcome("BA")).result, human))
    bias = voting.position_bias(
        (pid, order, choice) for pid, orders in by_pair.items() for order, choice in orders.items()
    )
    return {
        "k": k,
        "calls": len(jobs),
        "seconds": round(wall, 1),
        "unreadable": unreadable,
        "unreadable_examples": sorted(set(errors))[:3],
        **latency_summary([ms / 1000 for ms in latencies]),
        "single": with_ci(voting.agreement(single)),
        "both": with_ci(voting.agreement(both)),
        "ties_both": sum(1 for r, _ in both if r == "tie"),
        "position_bias": {**bias.__dict__, "follows_position_ci": rounded(bias.follows_position_ci)},
        "first_rate_ci": rounded(first_rate_ci(by_pair)),
    }


def rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return [round(interval[0], 3), round(interval[1], 3)] if interval else None


def with_ci(found: voting.Agreement) -> dict[str, Any]:
    """An agreement as JSON, with the 95% Wilson interval of its accuracy (a few dozen pairs need one)."""
    return {**found.__dict__, "accuracy_ci": rounded(found.accuracy_ci)}


def first_rate_ci(by_pair: dict[str, dict[str, str]]) -> tuple[float, float] | None:
    """95% Wilson interval of the share of readable non-tie answers that picked Candidate 1."""
    picks = [choice for orders in by_pair.values() for choice in orders.values() if choice in ("1", "2")]
    return voting.wilson_interval(picks.count("1"), len(picks))


def markdown_rows(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The results as rows of docs/experiments.md's table (intervals in brackets)."""

    def share(found: dict[str, Any], key: str = "accuracy") -> str:
        if found[key] is None:
            return "—"
        low, high = found[f"{key}_ci"]
        return f"{found['n_correct']} of {found['n_decided']} ({found[key]:.2f} [{low:.2f}, {high:.2f}])"

    rows = [
        "| examples | calls | unreadable | median call | single: decided, accuracy [95% CI] | "
        "both orders: decided (ties), accuracy | follows position [95% CI] | picks Candidate 1 [95% CI] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting in settings:
        single, both, bias = setting["single"], setting["both"], setting["position_bias"]
        follows = (
            f"{bias['follows_position']:.2f} of {bias['n_pairs']} pairs "
            f"[{bias['follows_position_ci'][0]:.2f}, {bias['follows_position_ci'][1]:.2f}]"
            if bias["follows_position"] is not None
            else "— (no pair readable in both orders)"
        )
        first = (
            f"{bias['first_rate']:.2f} [{setting['first_rate_ci'][0]:.2f}, {setting['first_rate_ci'][1]:.2f}]"
            if bias["first_rate"] is not None
            else "—"
        )
        p50 = f"{setting['p50_s']} s" if setting["p50_s"] is not None else "—"
        rows.append(
            f"| {setting['k']} | {setting['calls']} | {setting['unreadable']} | {p50} | "
            f"{single['n_decided']} of {single['n']}, {share(single)} | "
            f"{both['n_decided']} of {both['n']} ({setting['ties_both']} ties), {share(both)} | {follows} | {first} |"
        )
    return rows


def pointwise_check(endpoint: client.Endpoint, pair: prompt.PairText) -> str:
    """Whether the server sends logprobs (pointwise mode needs them); a sentence either way."""
    pointwise = client.Endpoint(
        base_url=endpoint.base_url, model=endpoint.model, response_format="none", max_tokens=1, top_logprobs=20
    )
    messages = prompt.build_pointwise_messages(guideline=GUIDELINE, examples=[], target=pair, candidate="A")
    try:
        reply = client.call(pointwise, messages, policy=client.RetryPolicy(retries=0))
    except client.CallFailed as exc:
        return f"the pointwise call failed: {exc}"
    if reply.top_logprobs is None:
        return "refused: the server returned no logprobs (transformers serve), so pointwise mode cannot score"
    return f"logprobs returned: {sorted(reply.top_logprobs)[:5]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Small real judge vs human labels (docs/experiments.md)")
    parser.add_argument("--n", type=int, default=24, help="target pairs judged (each in both orders, per setting)")
    parser.add_argument("--pool", type=int, default=300, help="pairs the examples are retrieved from")
    parser.add_argument("--ks", default="0,2,8")
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=12)
    add_server_arguments(parser)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true", help="also print the table rows for docs/experiments.md")
    args = parser.parse_args(argv)

    rows = load_pairs(DATA, args.max_chars)
    random.Random(args.seed).shuffle(rows)
    targets, pool_rows = rows[: args.n], rows[args.n : args.n + args.pool]
    pool = {pid: (pair, side) for pid, pair, side in pool_rows}
    pool_ids = [pid for pid, _, _ in pool_rows]
    retriever = LexicalRetriever(list(range(len(pool_ids))), [retrieval_text(p.conversation) for _, p, _ in pool_rows])

    def experiment(base_url: str, model: str) -> dict[str, Any]:
        endpoint = client.Endpoint(
            base_url=base_url, model=model, response_format="none", max_tokens=args.max_tokens, timeout=300
        )
        started = time.monotonic()
        settings = []
        for k in (int(x) for x in args.ks.split(",")):
            settings.append(run_setting(endpoint, targets, pool, retriever, pool_ids, k, args.workers))
            print(json.dumps(settings[-1]), file=sys.stderr, flush=True)
        return {
            "data": str(DATA.relative_to(ROOT.parent)),
            "n_targets": len(targets),
            "human_A_share": sum(1 for _, _, s in targets if s == "A") / len(targets),
            "max_chars": args.max_chars,
            "settings": settings,
            "pointwise": pointwise_check(endpoint, targets[0][1]),
            "seconds": round(time.monotonic() - started, 1),
        }

    with served(args.base_url, args.model) as (url, model):
        result = experiment(url, model)
    emit(result, args.out)
    if args.markdown:
        print("\n".join(markdown_rows(result["settings"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
