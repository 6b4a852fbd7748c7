"""The PostgreSQL benchmarks still run: each on a few hundred pairs, in its own database.

Their figures live in docs/benchmarks.md; these runs only check that the harness works against the
current schema (a new NOT NULL column once broke the stage-2 bench's stored-score set-up unnoticed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _bench(script: str, *args: str) -> str:
    """Run ``bench/<script>`` against a database of its own next to the test database; returns stdout."""
    params = connection.settings_dict
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    url = f"postgres://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/synpref_benchtest_{worker}"
    env = {**os.environ, "BENCH_DATABASE_URL": url, "DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_the_stage2_bookkeeping_bench_runs_on_stored_scores(require_postgres: Any) -> None:
    out = _bench("stage2_bench.py", "--n", "300", "--shard-size", "100", "--workers", "1", "2")
    assert "pool: 300 pairs and 600 stored scores" in out
    for workers in (1, 2):
        line = next(x for x in out.splitlines() if x.startswith(f"{workers} worker(s):"))
        assert "(3 shards)" in line and "'kept': 50" in line and "'flipped': 250" in line


def test_the_import_bench_runs(require_postgres: Any) -> None:
    demo = ROOT / "demo" / "pairs.jsonl"  # in the repository (the shared data may not be beside a clone)
    n = sum(1 for line in demo.read_text(encoding="utf-8").splitlines() if line.strip())
    out = _bench("import_bench.py", "--file", str(demo), "--naive-n", "20")
    assert f"file: {n} pairs" in out and "ratio bulk/naive:" in out
