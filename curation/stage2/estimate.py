"""Wall-time estimates of a stage-2 run from measured throughput (pure: no Django, no torch).

The filter is bound by scoring (two models, two sequences per pair: four forward passes), and shards
are independent, so throughput adds up across workers: ``wall = pairs / (pairs_per_s * workers)``.
The figures are the ones in docs/benchmarks.md ("Filter throughput with real scoring on the CPU
backbone" and "What 40M pairs would take"); the GPU figure was measured on one H200 with the in-process scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_POOL = 40_000_000  # SynPref-40M

# bench/stage2_bench.py --score --n 20000 --max-length 64 --batch-size 32 on a quiet 2-core machine: two
# one-thread workers 41.8 pairs/s, one one-thread worker 19.8 (20.5 to 21.6 pairs per CPU-second), both models
# (MiniLM-L6). Scoring is CPU-bound and shards are independent, so each core adds about this rate.
CPU_PAIRS_PER_S_PER_CORE = 21.0
CPU_MAX_LENGTH = 64
# bench/rm_gpu.py on one H200: the library Scorer scored 112 pairs/s with a Qwen3-0.6B-shaped model (bf16, max
# length 2,048, the shared pairs: ~710 tokens per pair), 1,000 pairs in a fresh process; both models on one GPU
# halve it. A floor: a longer, warm run and vLLM/SGLang scoring servers were not measured.
GPU_PAIRS_PER_S = 56.0
# The ledger alone (sharding, claiming, upserts, finalising with the dataset version) over 1M pairs with
# stored scores, two workers on a quiet 2-core box: the whole run (bench/stage2_bench.py --n 1000000 --workers 2).
LEDGER_PAIRS_PER_S = 2_859.0


@dataclass(frozen=True)
class Estimate:
    """One hardware line: ``workers`` units at ``pairs_per_s`` each filter ``pairs`` in ``seconds``."""

    hardware: str
    workers: int
    pairs_per_s: float
    pairs: int
    seconds: float
    measured: bool

    @property
    def duration(self) -> str:
        """``seconds`` in words: ``"42 s"``, ``"17 min"``, ``"3.2 hours"``, ``"12 days"``."""
        return human_duration(self.seconds)


def wall_time_s(pairs: int, pairs_per_s: float, workers: int = 1) -> float:
    """Seconds to filter ``pairs`` with ``workers`` units of ``pairs_per_s`` each (both models per pair).

    Raises ValueError for a negative pool, a non-positive rate or fewer than one worker.
    """
    if pairs < 0:
        raise ValueError(f"pairs must be 0 or more, got {pairs}")
    if not pairs_per_s > 0:
        raise ValueError(f"pairs_per_s must be positive, got {pairs_per_s}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    return pairs / (pairs_per_s * workers)


def human_duration(seconds: float) -> str:
    """A duration in the largest unit that keeps it readable (s, min, hours, days)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:,.0f} days"


def stage2_estimates(pairs: int) -> list[Estimate]:
    """Estimated wall time of filtering ``pairs`` on CPU workers and on GPUs (both rates measured)."""
    rows = [
        (f"CPU worker, 1 core (MiniLM, max length {CPU_MAX_LENGTH})", 1, CPU_PAIRS_PER_S_PER_CORE, True),
        (f"CPU workers, 64 cores (MiniLM, max length {CPU_MAX_LENGTH})", 64, CPU_PAIRS_PER_S_PER_CORE, True),
        ("GPU, H200 (0.6B model, bf16, ~710-token pairs)", 1, GPU_PAIRS_PER_S, True),
        ("GPUs, 8 x H200 (0.6B model, bf16, ~710-token pairs)", 8, GPU_PAIRS_PER_S, True),
    ]
    return [
        Estimate(hardware, workers, rate, pairs, wall_time_s(pairs, rate, workers), measured)
        for hardware, workers, rate, measured in rows
    ]
