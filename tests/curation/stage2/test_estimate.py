"""The run page's wall-time estimate: the formula, its errors, the words, the hardware lines."""

from __future__ import annotations

import pytest

from curation.stage2 import estimate


def test_wall_time_divides_pairs_by_rate_times_workers() -> None:
    assert estimate.wall_time_s(20_000, 5.0, 1) == 4_000
    assert estimate.wall_time_s(20_000, 5.0, 2) == 2_000
    assert estimate.wall_time_s(40_000_000, 1_000.0, 8) == 5_000
    assert estimate.wall_time_s(0, 5.0, 3) == 0


@pytest.mark.parametrize(
    ("pairs", "rate", "workers", "message"),
    [(-1, 1.0, 1, "pairs"), (10, 0.0, 1, "pairs_per_s"), (10, -2.0, 1, "pairs_per_s"), (10, 1.0, 0, "workers")],
)
def test_wall_time_rejects_impossible_inputs(pairs: int, rate: float, workers: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate.wall_time_s(pairs, rate, workers)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (42, "42 s"),
        (17 * 60, "17 min"),
        (3.2 * 3600, "3.2 hours"),
        (12 * 86400, "12 days"),
        (1_234 * 86400, "1,234 days"),
    ],
)
def test_durations_read_in_the_largest_sensible_unit(seconds: float, words: str) -> None:
    assert estimate.human_duration(seconds) == words


def test_estimates_use_the_measured_cpu_and_gpu_rates() -> None:
    rows = estimate.stage2_estimates(estimate.PAPER_POOL)
    cpu_one, cpu_many, gpu_one, gpu_eight = rows
    assert cpu_one.measured and cpu_one.pairs_per_s == estimate.CPU_PAIRS_PER_S_PER_CORE
    assert cpu_one.seconds == pytest.approx(estimate.PAPER_POOL / estimate.CPU_PAIRS_PER_S_PER_CORE)
    assert cpu_many.seconds == pytest.approx(cpu_one.seconds / cpu_many.workers)
    assert gpu_one.measured and gpu_one.pairs_per_s == estimate.GPU_PAIRS_PER_S and gpu_eight.workers == 8
    assert gpu_eight.seconds == pytest.approx(estimate.PAPER_POOL / (8 * estimate.GPU_PAIRS_PER_S))
    assert gpu_eight.duration == "24.8 hours"  # 40M / (8 x 56) pairs/s
    assert f"max length {estimate.CPU_MAX_LENGTH}" in cpu_one.hardware
