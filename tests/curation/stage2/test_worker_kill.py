"""A real worker process killed with SIGKILL mid-shard: the shard is re-claimed, no pair lost or counted twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from annotation.formats import content_hash
from annotation.models import Pair
from config import jobs
from curation.stage2 import engine
from curation.stage2.jobs import SHARD
from curation.stage2.models import Stage2Result, Stage2Run, Stage2Shard
from tests.conftest import wait_for
from tests.curation.stage2.conftest import make_models, store_scores
from tests.test_reliability import WorkerProcess, worker_process  # noqa: F401 (the fixture)

N = 6000


@pytest.mark.worker
def test_kill_9_mid_shard_reclaims_it_and_counts_each_pair_once(
    worker_process: WorkerProcess,  # noqa: F811
    project: Any,
    tmp_path: Path,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STAGE2_STALE_AFTER_S", "3")
    monkeypatch.setenv("STAGE2_JUDGE_FUNCTION", "")
    settings.STAGE2_STALE_AFTER_S = 3
    settings.STAGE2_JUDGE_FUNCTION = ""
    rows = []
    for i in range(N):
        conv = [{"role": "user", "content": f"question {i}"}]
        a, b = f"answer a {i}", f"answer b {i}"
        rows.append(Pair(project=project, conversation=conv, response_a=a, response_b=b, source_label="A", content_hash=content_hash(conv, a, b)))  # fmt: skip
    pairs = Pair.objects.bulk_create(rows, batch_size=2000)
    gold, best = make_models(project, tmp_path)
    store_scores(gold, {p.pk: (1.0 if i % 3 else -1.0) for i, p in enumerate(pairs)})
    store_scores(best, {p.pk: (1.0 if i % 4 else -1.0) for i, p in enumerate(pairs)})
    worker_process.start()
    with transaction.atomic():
        run = engine.stage2_run_create(project=project, config={"shard_size": N, "chunk_size": 100})
    shard = Stage2Shard.objects.get(run=run)
    wait_for(lambda: Stage2Shard.objects.filter(pk=shard.pk, n_done__gte=300).exists(), timeout=180, interval=0.02)
    worker_process.kill()
    shard.refresh_from_db()
    assert shard.status == "running" and 0 < shard.n_done < N  # killed mid-shard
    written_before = Stage2Result.objects.filter(run=run).count()
    assert 0 < written_before < N
    time.sleep(3.5)  # the heartbeat goes stale
    assert jobs.reap(SHARD)["requeued"] == 1
    worker_process.start()
    done = wait_for(
        lambda: Stage2Run.objects.filter(pk=run.pk, status__in=["done", "failed"]).first(), timeout=240, interval=0.2
    )
    assert done.status == "done", done.error
    shard.refresh_from_db()
    assert shard.attempts == 2 and shard.n_done == N
    assert Stage2Result.objects.filter(run=run).count() == N  # every pair once
    assert sum(done.summary["outcomes"].values()) == N == done.summary["n_results"]
    expected_kept = sum(1 for i in range(N) if i % 3 and i % 4)
    assert done.summary["outcomes"]["kept"] == expected_kept
