"""Stage-2 bookkeeping on PostgreSQL: sharding, claiming, upserts and finalising with precomputed scores.

    .venv/bin/python bench/stage2_bench.py [--n 1000000] [--shard-size 10000] [--workers 1 2]

Scoring is replaced by stored scores (both models' ``PairScore`` rows exist, so the engine reuses
them and scores nothing): what is left is the ledger's own cost. Each ``--workers`` value runs one
whole stage-2 run with that many worker processes claiming shards by compare-and-set (as Celery
workers do; no broker in the way), then the finaliser (counts and the dataset version). Prints
pairs/s per run and the database size per million pairs of the result and score tables.

    .venv/bin/python bench/stage2_bench.py --score --n 20000 --shard-size 1000 --workers 1 2 \
        --max-length 128 --batch-size 32

``--score``: the filter with real scoring instead (real pairs from ../shared/data, nothing stored
beforehand, the packaged MiniLM backbone as both gold and best model, through rewardmodel.scoring
on the CPU: four forward passes per pair). Each worker count runs on a fresh pool of the same
pairs, so no score is reused between them. Each worker process uses ``--threads`` torch threads
(default: the cores divided by the workers, what ``RM_TORCH_THREADS=0`` gives a Celery worker) and
loads the model once before its clock starts. Besides wall-clock pairs/s it prints the CPU seconds
the workers spent per pair: on a box shared with other work, cores x pairs per CPU-second is what
the same run would do alone (scoring is CPU-bound), so it also prints that projection.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from typing import Any

from _setup import fresh_postgres

DB = "synpref_bench_stage2"


def _worker(args: tuple[list[int], dict]) -> dict:
    shard_ids, score = args
    import django

    django.setup()
    from curation.stage2.engine import stage2_shard_run

    info: dict = {}
    if score:
        import torch
        from django.conf import settings

        from rewardmodel import scoring

        settings.RM_TORCH_THREADS = score["threads"]
        start = time.perf_counter()
        scoring._scorer(score["path"], score["batch_size"], score["max_length"])  # load once, off the clock
        info = {"load_s": time.perf_counter() - start, "threads": torch.get_num_threads()}
    cpu, start = time.process_time(), time.perf_counter()
    # Every worker walks every shard: the claim lets exactly one of them work each.
    done = sum(1 for pk in shard_ids if stage2_shard_run(shard_id=pk) == "done")
    return {**info, "done": done, "start": start, "end": time.perf_counter(), "cpu_s": time.process_time() - cpu}


def _setup_scored_pool(n: int, name: str) -> Any:
    """``n`` real pairs (shared data) and two registered models (the packaged MiniLM), no stored score."""
    from _setup import generated_pairs

    from annotation.formats import content_hash, parse_record
    from annotation.models import Pair
    from annotation.services import project_create
    from rewardmodel.ml.backbones import default_backbone_path
    from rewardmodel.models import ModelVersion

    project = project_create(name=name)
    rows = []
    for row in generated_pairs(n, seed=len(name)):
        record = parse_record(json.dumps(row))
        label = record.source_label or "A"
        rows.append(Pair(project=project, conversation=record.conversation, response_a=record.response_a, response_b=record.response_b, source_label=label, content_hash=content_hash(record.conversation, record.response_a, record.response_b)))  # fmt: skip
    Pair.objects.bulk_create(rows)
    scope = f"project:{project.pk}"
    path = str(default_backbone_path())
    ModelVersion.objects.create(name=f"{name}-gold", scope=scope, base_model="x", path=path, is_gold=True)
    ModelVersion.objects.create(name=f"{name}-best", scope=scope, base_model="x", path=path, is_current_best=True)
    return project


def _setup_pool(n: int) -> tuple[Any, float]:
    from django.db import connection

    from annotation.formats import content_hash
    from annotation.models import Pair
    from annotation.services import project_create
    from curation.models import PairScore
    from curation.stage2.engine import DEFAULTS
    from rewardmodel.models import ModelVersion

    start = time.perf_counter()
    project = project_create(name="bench-stage2")
    batch = 20_000
    for lo in range(0, n, batch):
        rows = []
        for i in range(lo, min(n, lo + batch)):
            conv = [{"role": "user", "content": f"Question {i}: how do I keep basil alive on a windowsill?"}]
            a, b = f"Water it when the soil is dry ({i}).", f"Never water it ({i})."
            rows.append(
                Pair(
                    project=project, conversation=conv, response_a=a, response_b=b, source_label="AB"[i % 2],
                    source=("hh", "sff", "ultra")[i % 3], subset=("chat", "code", "math", "safety")[i % 4],
                    content_hash=content_hash(conv, a, b),
                )
            )  # fmt: skip
        Pair.objects.bulk_create(rows)
    scope = f"project:{project.pk}"
    gold = ModelVersion.objects.create(name="bench-gold", scope=scope, base_model="x", path="/none", is_gold=True)
    best = ModelVersion.objects.create(name="bench-best", scope=scope, base_model="x", path="/none", is_current_best=True)  # fmt: skip
    # Precomputed scores, written with COPY: margins that give every outcome.
    ids = list(
        Pair.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)
    )  # COPY holds the connection
    # Stored at the max length of the run below (the default), or the engine would score them again.
    length = int(DEFAULTS["max_length"])
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY curation_pairscore (pair_id, model_version_id, r_a, r_b, max_length, scored_at) FROM STDIN"
        ) as copy,
    ):
        for k, pid in enumerate(ids):
            copy.write_row((pid, gold.pk, 1.0 if k % 3 else -1.0, 0.0, length, "2026-01-01T00:00:00Z"))
            copy.write_row((pid, best.pk, 1.0 if k % 4 else -1.0, 0.0, length, "2026-01-01T00:00:00Z"))
    assert PairScore.objects.count() == 2 * n
    return project, time.perf_counter() - start


def _size(table: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        return int(cursor.fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--chunk-size", type=int, default=1_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--score", action="store_true", help="score for real (CPU backbone) instead of stored scores")
    parser.add_argument("--max-length", type=int, default=128, help="--score: tokens per sequence (the run setting)")
    parser.add_argument("--batch-size", type=int, default=32, help="--score: sequences per forward pass")
    parser.add_argument("--threads", type=int, default=0, help="--score: torch threads per worker (0: cores/workers)")
    args = parser.parse_args()
    fresh_postgres(DB)
    os.environ["STAGE2_JUDGE_FUNCTION"] = ""  # no judges: the ledger alone

    from django.conf import settings
    from django.db import connection

    settings.STAGE2_JUDGE_FUNCTION = ""
    from curation.stage2 import engine
    from curation.stage2.models import Stage2Result, Stage2Run

    if not args.score:
        project, setup_s = _setup_pool(args.n)
        print(f"pool: {args.n:,} pairs and {2 * args.n:,} stored scores written in {setup_s:.0f} s")
    for workers in args.workers:
        if args.score:
            project = _setup_scored_pool(args.n, f"bench-scored-{workers}")
        start = time.perf_counter()
        config = {"shard_size": args.shard_size, "chunk_size": args.chunk_size}
        score: dict = {}
        if args.score:
            from rewardmodel.ml.backbones import default_backbone_path

            config.update(max_length=args.max_length, score_batch_size=args.batch_size)
            threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
            score = {"path": str(default_backbone_path()), "batch_size": args.batch_size, "max_length": args.max_length, "threads": threads}  # fmt: skip
        run = engine.stage2_run_create(project=project, config=config, enqueue=False)
        create_s = time.perf_counter() - start
        shard_ids = list(run.shards.order_by("index").values_list("pk", flat=True))
        connection.close()
        load_before = os.getloadavg()[0]
        work_start = time.perf_counter()
        ctx = mp.get_context("fork")
        with ctx.Pool(workers) as pool:
            infos = pool.map(_worker, [(shard_ids, score)] * workers)
        done = sum(i["done"] for i in infos)
        work_s = max(i["end"] for i in infos) - min(i["start"] for i in infos) if args.score else time.perf_counter() - work_start  # fmt: skip
        fin_start = time.perf_counter()
        engine.stage2_finalise(run_id=run.pk)  # the last shard's worker normally closed it already
        run = Stage2Run.objects.get(pk=run.pk)
        total_s = time.perf_counter() - start
        n_results = Stage2Result.objects.filter(run=run).count()
        assert run.status == "done", run.error
        assert done == len(shard_ids) and n_results == args.n == run.summary["n_results"], (done, n_results)
        print(
            f"{workers} worker(s): create+shard {create_s:.1f} s ({len(shard_ids)} shards), "
            f"work {work_s:.1f} s = {args.n / work_s:,.2f} pairs/s, finalise (incl. dataset version) "
            f"{time.perf_counter() - fin_start:.1f} s after the workers; whole run {total_s:.1f} s = "
            f"{args.n / total_s:,.2f} pairs/s; outcomes {run.summary['outcomes']}"
        )
        if args.score:
            cpu_s = sum(i["cpu_s"] for i in infos)
            cores = sum(i["threads"] for i in infos)
            print(
                f"  max length {args.max_length}, batch {args.batch_size}, torch threads per worker "
                f"{[i['threads'] for i in infos]}, model load {max(i['load_s'] for i in infos):.1f} s (before the clock); "
                f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; "
                f"CPU {cpu_s:.0f} s = {args.n / cpu_s:.2f} pairs per CPU-second; "
                f"alone on {cores} core(s): about {args.n / cpu_s * cores:.2f} pairs/s, "
                f"20,000 pairs in {20_000 / (args.n / cpu_s * cores) / 60:.0f} min"
            )
    if args.score:
        return
    per_million = 1e6 / (args.n * len(args.workers))
    print(
        f"database size per million pairs: results {_size('curation_stage2result') * per_million / 1e6:.0f} MB, "
        f"stored scores (two models) {_size('curation_pairscore') * 1e6 / args.n / 1e6:.0f} MB, "
        f"shards {_size('curation_stage2shard') * per_million / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
