"""Shared by the LLM-judge benchmarks (bench/judge_bench.py, bench/judge_experiment.py).

- :func:`add_server_arguments` / :func:`served`: use the OpenAI-compatible server given by
  ``--base-url``/``--model``, or start the local SmolLM2-135M one (devtools/local_llm.py) for the
  length of the ``with`` block and stop it after.
- :func:`run_concurrently`: calls with N in flight, timed by the wall clock.
- :func:`percentile` / :func:`latency_summary`: p50 and p95 of per-call latencies.
- :func:`emit`: print the result as JSON and write it to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T = TypeVar("T")
R = TypeVar("R")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default="", help="an OpenAI-compatible server (default: start the local one)")
    parser.add_argument("--model", default="", help="the model name that server expects")


@contextlib.contextmanager
def served(base_url: str = "", model: str = "") -> Iterator[tuple[str, str]]:
    """``(base_url, model)`` of the server to measure: the given one, or the local SmolLM2-135M
    server started now (converted from its wheel on first use) and stopped when the block ends."""
    if base_url:
        yield base_url, model
        return
    from devtools import local_llm

    model_dir = local_llm.prepare()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        started = time.monotonic()
        with local_llm.running_server(model_dir, log_path=log) as url:
            print(f"local server up in {time.monotonic() - started:.0f} s at {url}", file=sys.stderr, flush=True)
            yield url, local_llm.model_name(model_dir)


def run_concurrently(func: Callable[[T], R], jobs: Sequence[T], workers: int) -> tuple[list[R], float]:
    """``func`` over ``jobs`` with ``workers`` in flight; the results in job order and the wall seconds."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(func, jobs))
    return results, time.monotonic() - started


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 in seconds (None for no calls)."""
    if not latencies_s:
        return {"p50_s": None, "p95_s": None}
    return {"p50_s": round(percentile(latencies_s, 0.5), 2), "p95_s": round(percentile(latencies_s, 0.95), 2)}


def emit(result: dict[str, Any], out: Path | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
