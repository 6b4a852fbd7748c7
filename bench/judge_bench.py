"""Judge throughput against the local OpenAI-compatible server, the cache-hit cost, and a cost projection.

1. Throughput: the same small judge prompt (a short pair, no examples) sent with 1, 4 and 16
   requests in flight through the judges' client (:func:`curation.judges.client.call`); calls/s,
   p50 and p95 latency, tokens per call.
2. Cache hit: ``judge_pairs`` on pairs already judged (answers come from ``JudgeCall`` rows, no HTTP):
   milliseconds per pair, in a fresh PostgreSQL database (bench/_setup.py).
3. Projection: prompt and completion tokens per pair (measured above, times the calls a pair needs)
   for 1M pairs at a stated price per million tokens (``--price-in``/``--price-out``, USD).

    python bench/judge_bench.py [--base-url URL --model NAME] [--calls 16] [--out FILE]

Without ``--base-url`` it starts the local SmolLM2-135M server (devtools/local_llm.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _llm import add_server_arguments, emit, latency_summary, run_concurrently, served  # bench/ is on sys.path

from curation.judges import client, prompt  # importable: bench/_llm.py put the project root on sys.path

PAIR = prompt.PairText(
    conversation=[{"role": "user", "content": "What is the capital of France? One word."}],
    response_a="Paris.",
    response_b="Lyon.",
)


def throughput(endpoint: client.Endpoint, concurrency: int, calls: int) -> dict[str, Any]:
    # Distinct prompts (a number in the question) so no server-side prefix cache makes calls free.
    jobs = []
    for n in range(calls):
        pair = prompt.PairText(
            [{"role": "user", "content": f"What is the capital of France? One word. (question {n})"}],
            PAIR.response_a,
            PAIR.response_b,
        )
        jobs.append(prompt.build_messages(guideline="", examples=[], target=pair, order="AB" if n % 2 else "BA"))
    replies, wall = run_concurrently(
        lambda m: client.call(endpoint, m, policy=client.RetryPolicy(retries=1)), jobs, concurrency
    )
    return {
        "concurrency": concurrency,
        "calls": calls,
        "calls_per_s": round(calls / wall, 3),
        **latency_summary([r.latency_ms / 1000 for r in replies]),
        "prompt_tokens": statistics.mean(r.prompt_tokens or 0 for r in replies),
        "completion_tokens": statistics.mean(r.completion_tokens or 0 for r in replies),
        "readable": sum(prompt.parse_judgement(r.content).ok for r in replies),
    }


def cache_hit_cost(base_url: str, model: str, n_pairs: int) -> dict[str, Any]:
    """ms per pair for ``judge_pairs`` when every answer is cached (the first pass fills the cache)."""
    import os

    os.environ.setdefault("JUDGE_RETRIEVER", "lexical")  # no examples asked for; no encoder to load
    from _setup import fresh_postgres  # bench/ is on sys.path when this file runs as a script

    fresh_postgres("synpref_bench_judges")
    from annotation.models import Pair
    from annotation.services import project_create
    from curation.judges.models import Judge, JudgeCall
    from curation.judges.services import judge_pairs

    project = project_create(name="Judge bench", created_by=None)
    pairs = Pair.objects.bulk_create(
        [
            Pair(
                project=project,
                conversation=[{"role": "user", "content": f"Question {n}: what is {n} + {n}?"}],
                response_a=str(2 * n),
                response_b=str(2 * n + 1),
                source_label="A",
                content_hash=f"judge-bench-{n}",  # unique per project
            )
            for n in range(n_pairs)
        ]
    )
    judge = Judge.objects.create(
        name="bench", base_url=base_url, model=model, response_format="none", max_tokens=24, max_examples=0
    )
    ids = [p.pk for p in pairs]
    started = time.monotonic()
    judge_pairs(ids, judges=[judge])
    first = time.monotonic() - started
    asked = JudgeCall.objects.count()
    started = time.monotonic()
    judge_pairs(ids, judges=[judge])
    again = time.monotonic() - started
    assert JudgeCall.objects.count() == asked, "a cached rerun asked the server"
    return {
        "pairs": n_pairs,
        "first_pass_s": round(first, 2),
        "cached_pass_s": round(again, 3),
        "cached_ms_per_pair": round(1000 * again / n_pairs, 2),
    }


def projection(prompt_tokens: float, completion_tokens: float, args: argparse.Namespace) -> dict[str, Any]:
    calls = args.calls_per_pair
    tokens_in, tokens_out = prompt_tokens * calls * 1e6, completion_tokens * calls * 1e6
    return {
        "pairs": 1_000_000,
        "calls_per_pair": calls,
        "prompt_tokens_per_call": round(prompt_tokens, 1),
        "completion_tokens_per_call": round(completion_tokens, 1),
        "price_in_per_mtok": args.price_in,
        "price_out_per_mtok": args.price_out,
        "usd": round(tokens_in / 1e6 * args.price_in + tokens_out / 1e6 * args.price_out, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Judge throughput, cache-hit cost and 1M-pair projection")
    add_server_arguments(parser)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--calls", type=int, default=16, help="calls per concurrency level")
    parser.add_argument("--cache-pairs", type=int, default=20)
    parser.add_argument("--calls-per-pair", type=int, default=2, help="e.g. both orders, one sample")
    parser.add_argument("--price-in", type=float, default=0.15, help="USD per million prompt tokens")
    parser.add_argument("--price-out", type=float, default=0.60, help="USD per million completion tokens")
    parser.add_argument("--no-cache-bench", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    def measure(base_url: str, model: str) -> dict[str, Any]:
        endpoint = client.Endpoint(base_url=base_url, model=model, response_format="none", max_tokens=24, timeout=600)
        levels = [throughput(endpoint, int(c), args.calls) for c in args.concurrency.split(",")]
        for level in levels:
            print(json.dumps(level), file=sys.stderr, flush=True)
        result: dict[str, Any] = {"throughput": levels}
        if not args.no_cache_bench:
            result["cache_hit"] = cache_hit_cost(base_url, model, args.cache_pairs)
        result["projection_1m"] = projection(levels[0]["prompt_tokens"], levels[0]["completion_tokens"], args)
        return result

    with served(args.base_url, args.model) as (url, model):
        result = measure(url, model)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
