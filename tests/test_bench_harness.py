"""The benchmarks still run: the PostgreSQL ones on a few hundred pairs, each in its own database, the TRL
comparison with tiny shapes on CPU, and ``bench/gpu_checks.sh`` (every GPU check) in its CPU smoke mode.

Their figures live in docs/benchmarks.md; these runs only check that the harness works against the
current schema (a new NOT NULL column once broke the stage-2 bench's stored-score set-up unnoticed) and the
installed TRL (it renames options between releases; the GPU run the comparison stands for costs minutes of a lent
machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``bench/<script>``; it must exit 0. Returns stdout."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def _bench(script: str, *args: str) -> str:
    """Run ``bench/<script>`` against a database of its own next to the test database; returns stdout."""
    params = connection.settings_dict
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = f"postgres://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/synpref_benchtest_{worker}"
    return _run(script, *args, env={**os.environ, "BENCH_DATABASE_URL": url, "DATABASE_URL": url})


@pytest.mark.postgres
def test_the_stage2_bookkeeping_bench_runs_on_stored_scores(require_postgres: Any) -> None:
    out = _bench("stage2_bench.py", "--n", "300", "--shard-size", "100", "--workers", "1", "2")
    assert "pool: 300 pairs and 600 stored scores" in out
    for workers in (1, 2):
        line = next(x for x in out.splitlines() if x.startswith(f"{workers} worker(s):"))
        assert "(3 shards)" in line and "'kept': 50" in line and "'flipped': 250" in line


@pytest.mark.postgres
def test_the_import_bench_runs(require_postgres: Any) -> None:
    demo = ROOT / "demo" / "pairs.jsonl"  # in the repository (the shared data may not be beside a clone)
    n = sum(1 for line in demo.read_text(encoding="utf-8").splitlines() if line.strip())
    out = _bench("import_bench.py", "--file", str(demo), "--naive-n", "20")
    assert f"file: {n} pairs" in out and "ratio bulk/naive:" in out


def test_the_trl_comparison_runs_ours_both_trl_samplers_and_the_sharded_scaling() -> None:
    """Our loop, TRL with both samplers and the FSDP scaling runs (two Gloo ranks), tiny shapes on CPU."""
    pairs = ROOT / "demo" / "pairs.jsonl"
    out = _run("rm_trl_compare.py", "--smoke", "--cpu", "--ranks", "2", "--pairs", str(pairs))
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["device"] == "cpu (smoke)" and summary["steps"] == 4 and summary["batch_size"] == 2
    for key in ("ours", "trl", "trl_grouped"):
        assert summary[key]["tokens_per_s"] > 0, key
        assert 0.0 <= summary[key]["accuracy"] <= 1.0, key
    fsdp = summary["fsdp"]
    assert fsdp["accelerator"] == "cpu" and fsdp["1"]["tokens_per_s"] > 0 and fsdp["2"]["tokens_per_s"] > 0
    assert fsdp["speedup"] == fsdp["2"]["tokens_per_s"] / fsdp["1"]["tokens_per_s"]


def _gpu_checks(tmp_path: Path, steps: str | None = None) -> list[str]:
    """Run ``bench/gpu_checks.sh --smoke`` on the demo pairs (the shared data may not be beside a clone); returns
    its summary lines (``NAME rc=N Ss``)."""
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    (data / "hh_dev.jsonl").write_text((ROOT / "demo" / "pairs.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    (data / "sff_comparisons.jsonl").write_text("", encoding="utf-8")
    env = {**os.environ, "OUT": str(out), "SYNPREF_DATA_DIR": str(data), "PYTHON": sys.executable}
    if steps is not None:
        env["STEPS"] = steps
    done = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_checks.sh"), "--smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return (out / "summary.txt").read_text(encoding="utf-8").splitlines()


def test_the_gpu_checks_script_runs_every_step_with_smoke_shapes(tmp_path: Path) -> None:
    """The script a session lent a GPU runs in one call (minutes of a scarce machine): every step must start, run
    and report, here with tiny shapes on CPU, where the gpu tests skip."""
    summary = _gpu_checks(tmp_path)
    assert [line.split()[0] for line in summary] == ["pytest_gpu", "rm_gpu", "rm_trl_compare", "rm_long_memory"]
    assert all(line.split()[1] == "rc=0" for line in summary), summary
    out = tmp_path / "out"
    assert "skipped" in (out / "pytest_gpu.log").read_text() and "failed" not in (out / "pytest_gpu.log").read_text()
    assert "training speed-up" in (out / "rm_gpu.log").read_text()
    assert "scoring speed-up" in (out / "rm_gpu.log").read_text()
    compare = json.loads((out / "rm_trl_compare.log").read_text().strip().splitlines()[-1])
    assert {"ours", "trl", "trl_grouped"} <= compare.keys()
    layouts = [json.loads(x) for x in (out / "rm_long_memory.log").read_text().splitlines() if x.startswith("{")]
    assert [(x["layout"], x["error"]) for x in layouts] == [("padded", ""), ("packed", "")]
    assert "torch" in (out / "env.txt").read_text()


def test_the_gpu_checks_script_reruns_only_the_steps_named(tmp_path: Path) -> None:
    summary = _gpu_checks(tmp_path, steps="rm_long_memory")
    assert [line.split()[:2] for line in summary] == [["rm_long_memory", "rc=0"]]
    assert not (tmp_path / "out" / "rm_gpu.log").exists()
