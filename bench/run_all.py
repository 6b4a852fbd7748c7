"""Run every benchmark in bench/, one after another, and print a summary (``make bench``).

    .venv/bin/python bench/run_all.py            # quick sizes: a few minutes on 2 cores
    .venv/bin/python bench/run_all.py --full     # the sizes docs/benchmarks.md reports (much longer)
    .venv/bin/python bench/run_all.py --only alpha import

Each benchmark prints its own figures (and, where there is a naive way, the ratio against it). The
PostgreSQL ones need a server (``BENCH_DATABASE_URL`` or postgres://postgres@127.0.0.1:5432, see
bench/_setup.py); the GPU one exits cleanly without CUDA, so without a GPU it runs ``--smoke``.
Exit status: 0 when every benchmark that ran exited 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent

# name: (script, quick arguments, full arguments)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "alpha": ("alpha_bench.py", ["--pairs", "50000"], []),
    "retrieval": ("retrieval_bench.py", ["--n", "100000", "--queries", "300"], []),
    "import": ("import_bench.py", ["--n", "10000", "--naive-n", "2000"], ["--n", "100000", "--naive-n", "10000"]),
    "search": ("search_bench.py", ["--n", "20000", "--queries", "100", "--naive-queries", "30"], []),
    "serve": ("serve_bench.py", ["--annotators", "20", "--seconds", "20", "--pairs", "3000"], []),
    "rm_scoring": ("rm_scoring.py", ["--pairs", "120", "--max-length", "128", "--no-onnx"], []),
    "rm_quality": ("rm_quality.py", ["--max-steps", "40"], []),
    "round": ("round_sim.py", ["--limit", "600", "--label-budget", "120"], []),
    "stage2": ("stage2_bench.py", ["--n", "20000", "--shard-size", "2000"], ["--n", "1000000", "--workers", "2"]),
    "stage2_upsert": ("stage2_upsert_bench.py", ["--n", "5000", "--repeats", "1"], ["--n", "20000", "--repeats", "3"]),
    "remote_scoring": (
        "remote_scoring_bench.py",
        ["--pairs", "500", "--naive-pairs", "100"],
        ["--pairs", "2000", "--naive-pairs", "300"],
    ),
    "rm_memory": ("rm_memory.py", [], []),
    "rm_packing": ("rm_packing.py", ["--skip-timing"], []),
    "judge": ("judge_bench.py", ["--calls", "4", "--cache-pairs", "20"], []),
    "rm_gpu": ("rm_gpu.py", [], []),
}


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--full", action="store_true", help="the sizes reported in docs/benchmarks.md")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    results: list[tuple[str, int, float]] = []
    for name in names:
        script, quick, full = BENCHMARKS[name]
        extra = full if args.full else quick
        if name == "rm_gpu" and not _has_cuda():
            extra = ["--smoke"]
        cmd = [sys.executable, str(BENCH / script), *extra]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.monotonic()
        code = subprocess.call(cmd)
        results.append((name, code, time.monotonic() - started))
    print("\n=== summary")
    for name, code, seconds in results:
        print(f"{name:12s} {'ok' if code == 0 else f'FAILED (exit {code})':18s} {seconds:8.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
