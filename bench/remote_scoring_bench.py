"""Client overhead of the scoring-server client (rewardmodel.remote) against the in-process stub servers.

Pairs/s through :class:`rewardmodel.remote.RemoteScorer` with 1, 4 and 16 requests in flight per server, against
the naive way (one request per pair, one at a time). The servers are ``devtools.scoring_stub`` (vLLM's format,
deterministic logits, no model), so with ``--latency-ms 0`` the figure is the client's (and the stub's) own cost
per pair on this machine; ``--latency-ms N`` makes each request take N ms more, as a GPU forward would, to show
how much latency the concurrency hides. Texts are ~400 characters (a short ChatML conversation).

    .venv/bin/python bench/remote_scoring_bench.py [--pairs 4000] [--batch-size 32] [--servers 1] [--latency-ms 0]

Prints one JSON line per setting and a summary with ratios to the naive way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.scoring_stub import StubServer, stub_logit  # noqa: E402
from rewardmodel import remote  # noqa: E402


def texts_for(n_pairs: int) -> list[str]:
    body = "Explain how a hash map handles collisions, with an example in Python. " * 3
    out = []
    for i in range(n_pairs):
        for side in ("chosen", "rejected"):
            out.append(
                f"<|im_start|>user\n{body}(question {i})<|im_end|>\n"
                f"<|im_start|>assistant\nThe {side} answer number {i}: chaining or open addressing.<|im_end|>\n"
            )
    return out


def measure(servers: list[StubServer], texts: list[str], batch_size: int, concurrency: int) -> dict[str, Any]:
    config = remote.ServerConfig(
        kind="vllm",
        base_urls=tuple(s.url for s in servers),
        model="rm",
        batch_size=batch_size,
        concurrency=concurrency,
        check_saturation=False,
    )
    scorer = remote.RemoteScorer(config)
    started = time.perf_counter()
    scores = scorer.score(texts)
    seconds = time.perf_counter() - started
    assert scores[:3] == [stub_logit(t) for t in texts[:3]]
    pairs = len(texts) // 2
    return {
        "batch_size": batch_size,
        "concurrency_per_server": concurrency,
        "servers": len(servers),
        "pairs": pairs,
        "requests": scorer.stats.requests,
        "seconds": round(seconds, 3),
        "pairs_per_s": round(pairs / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32, help="texts per request (a pair is two texts)")
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="extra time each request takes at the server")
    parser.add_argument("--naive-pairs", type=int, default=500, help="pairs for the one-request-per-pair baseline")
    args = parser.parse_args()

    servers = [StubServer("vllm", model="rm", delay_s=args.latency_ms / 1000).start() for _ in range(args.servers)]
    try:
        naive = measure(servers[:1], texts_for(args.naive_pairs), batch_size=2, concurrency=1)
        naive["setting"] = "naive: one request per pair, one at a time, one server"
        print(json.dumps(naive), flush=True)
        texts = texts_for(args.pairs)
        rows = []
        for concurrency in (1, 4, 16):
            row = measure(servers, texts, args.batch_size, concurrency)
            row["ratio_to_naive"] = round(row["pairs_per_s"] / naive["pairs_per_s"], 2)
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        for s in servers:
            s.stop()
    print(
        json.dumps(
            {
                "latency_ms": args.latency_ms,
                "naive_pairs_per_s": naive["pairs_per_s"],
                "pairs_per_s_by_concurrency": {r["concurrency_per_server"]: r["pairs_per_s"] for r in rows},
                "ratio_to_naive": {r["concurrency_per_server"]: r["ratio_to_naive"] for r in rows},
            }
        )
    )


if __name__ == "__main__":
    main()
