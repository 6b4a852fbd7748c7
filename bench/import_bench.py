"""Import throughput on PostgreSQL: the bulk import path vs a naive per-row save loop.

    .venv/bin/python bench/import_bench.py [--n 100000] [--naive-n 10000]

The bulk path is the real one (validate the whole file, then COPY in one transaction). The naive
loop parses each line and calls ``Pair(...).save()`` in its own autocommit, as a first attempt would.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _setup import fresh_postgres, generated_pairs, write_jsonl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--naive-n", type=int, default=10_000)
    args = parser.parse_args()
    fresh_postgres("synpref_bench_import")

    from annotation.formats import parse_record
    from annotation.models import Pair
    from annotation.services import import_file, project_create

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pairs.jsonl"
        n = write_jsonl(path, generated_pairs(args.n))
        size_mb = path.stat().st_size / 1e6
        project = project_create(name="bench-bulk")
        start = time.perf_counter()
        result = import_file(project=project, path=path)
        bulk_s = time.perf_counter() - start
        assert result.n_imported == n, result
        again = time.perf_counter()
        dup = import_file(project=project, path=path)
        dup_s = time.perf_counter() - again
        assert dup.n_imported == 0 and dup.n_duplicates == n

        naive_project = project_create(name="bench-naive")
        lines = path.read_text(encoding="utf-8").splitlines()[: args.naive_n]
        start = time.perf_counter()
        for line in lines:
            record = parse_record(line)
            Pair(
                project=naive_project,
                conversation=record.conversation,
                response_a=record.response_a,
                response_b=record.response_b,
                source_label=record.source_label,
                external_id=record.external_id,
                source=record.source,
                subset=record.subset,
                content_hash=record.content_hash,
            ).save()
        naive_s = time.perf_counter() - start

    bulk_rate = n / bulk_s
    naive_rate = len(lines) / naive_s
    print(f"file: {n} pairs, {size_mb:.1f} MB")
    print(f"bulk import (validate + COPY, one transaction): {bulk_s:.1f} s, {bulk_rate:,.0f} pairs/s")
    print(f"re-import of the same file (all duplicates):    {dup_s:.1f} s, {n / dup_s:,.0f} pairs/s")
    print(f"naive per-row save loop ({len(lines)} pairs):       {naive_s:.1f} s, {naive_rate:,.0f} pairs/s")
    print(f"ratio bulk/naive: {bulk_rate / naive_rate:.1f}x")


if __name__ == "__main__":
    main()
