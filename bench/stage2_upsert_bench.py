"""Stage-2 result upsert on PostgreSQL: Django's bulk_create(update_conflicts) against the engine's unnest statement.

    .venv/bin/python bench/stage2_upsert_bench.py [--n 20000] [--chunk-size 1000] [--repeats 3]

The whole-run benchmark (bench/stage2_bench.py) swings by 2x with the load of this shared box, so
this one isolates the write: the same result rows (a fresh run each time, so the first pass inserts
and the second hits every conflict and updates), chunk by chunk in a transaction as the shard
worker does, the two methods interleaved ``--repeats`` times. Prints rows/s per method and pass
(median over repeats).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import cast

from _setup import fresh_postgres

DB = "synpref_bench_stage2_upsert"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    fresh_postgres(DB)
    from django.db import transaction
    from stage2_bench import _setup_pool

    from annotation.models import Project
    from curation.stage2 import engine
    from curation.stage2.models import Stage2Result, Stage2Run

    created, _ = _setup_pool(args.n)
    project = cast(Project, created)
    pair_ids = list(engine.pool_queryset(project).order_by("pk").values_list("pk", flat=True))

    def bulk(rows: list[Stage2Result]) -> None:
        Stage2Result.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["run", "pair"], update_fields=list(engine.RESULT_FIELDS)
        )

    methods = {"bulk_create(update_conflicts)": bulk, "unnest ON CONFLICT": engine.results_upsert}
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):
        for name, write in methods.items():
            Stage2Result.objects.all().delete()
            Stage2Run.objects.all().delete()
            run = engine.stage2_run_create(project=project, enqueue=False)
            for label, outcome in (("insert", "kept"), ("conflict", "flipped")):
                start = time.perf_counter()
                for lo in range(0, len(pair_ids), args.chunk_size):
                    rows = [
                        Stage2Result(run_id=run.pk, pair_id=pid, outcome=outcome, p_best=0.25, p_gold=0.75)
                        for pid in pair_ids[lo : lo + args.chunk_size]
                    ]
                    with transaction.atomic():
                        write(rows)
                rates.setdefault((name, label), []).append(len(pair_ids) / (time.perf_counter() - start))
            assert Stage2Result.objects.filter(run=run, outcome="flipped").count() == len(pair_ids)
    for (name, label), values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:30s} {label:8s} median {statistics.median(values):>9,.0f} rows/s  ({runs})")


if __name__ == "__main__":
    main()
