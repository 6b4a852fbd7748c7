"""``bench/rm_trl_compare.py`` still runs against the installed TRL: our loop, both TRL samplers and the FSDP scaling
runs (two Gloo ranks), tiny shapes on CPU.

Its figures live in docs/benchmarks.md and docs/training.md; this run checks that the harness works (TRL renames
options between releases; the GPU run it stands for costs minutes of a lent machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_trl_comparison_runs_ours_both_trl_samplers_and_the_sharded_scaling() -> None:
    bench, pairs = ROOT / "bench" / "rm_trl_compare.py", ROOT / "demo" / "pairs.jsonl"
    done = subprocess.run(
        [sys.executable, str(bench), "--smoke", "--cpu", "--ranks", "2", "--pairs", str(pairs)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["device"] == "cpu (smoke)" and summary["steps"] == 4 and summary["batch_size"] == 2
    for key in ("ours", "trl", "trl_grouped"):
        assert summary[key]["tokens_per_s"] > 0, key
        assert 0.0 <= summary[key]["accuracy"] <= 1.0, key
    fsdp = summary["fsdp"]
    assert fsdp["accelerator"] == "cpu" and fsdp["1"]["tokens_per_s"] > 0 and fsdp["2"]["tokens_per_s"] > 0
    assert fsdp["speedup"] == fsdp["2"]["tokens_per_s"] / fsdp["1"]["tokens_per_s"]
