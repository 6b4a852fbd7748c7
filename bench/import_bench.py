"""Import throughput on PostgreSQL: the bulk import path vs a naive per-row save loop.

    .venv/bin/python bench/import_bench.py [--n 100000] [--naive-n 10000] [--file PATH]

The bulk path is the real one (``import_file``: one pass that parses each line once, a binary COPY
per chunk of new pairs, one transaction). The naive loop parses each line and calls
``Pair(...).save()`` in its own autocommit, as a first attempt would.

Besides wall time it prints the CPU seconds of this process and of its PostgreSQL backend (both
on this machine, so the figures say where the time goes even when other work shares the cores),
the load average, and the import's peak memory: the process's peak RSS is reset just before the
import (Linux ``clear_refs``), so "peak RSS during import" is the import's own high-water mark,
which stays flat from 100k to 1M pairs. ``--file`` imports an existing file (e.g. a 1M-pair one
written by an earlier run with ``--keep``) instead of generating one.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

from _setup import fresh_postgres, generated_pairs, write_jsonl


def _rss_mb(key: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _backend_cpu_s() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (it runs on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # PostgreSQL on another machine
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--naive-n", type=int, default=10_000, help="0 skips the naive loop")
    parser.add_argument("--file", type=Path, help="import this file instead of generating --n pairs")
    parser.add_argument("--keep", type=Path, help="copy the generated file here for later runs")
    args = parser.parse_args()
    fresh_postgres("synpref_bench_import")

    from annotation.formats import parse_record
    from annotation.models import Pair
    from annotation.services import import_file, project_create

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path = args.file
            with path.open("rb") as handle:
                n = sum(1 for line in handle if line.strip())
        else:
            path = Path(tmp) / "pairs.jsonl"
            n = write_jsonl(path, generated_pairs(args.n))
            if args.keep:
                shutil.copyfile(path, args.keep)
        size_mb = path.stat().st_size / 1e6
        project = project_create(name="bench-bulk")
        rss_before = _rss_mb("VmRSS")
        peak_reset = _reset_peak_rss()
        cpu, backend = time.process_time(), _backend_cpu_s()
        start = time.perf_counter()
        result = import_file(project=project, path=path)
        bulk_s = time.perf_counter() - start
        bulk_cpu, bulk_backend = time.process_time() - cpu, _backend_cpu_s() - backend
        peak = _rss_mb("VmHWM")
        assert result.n_imported == n, result
        cpu, backend = time.process_time(), _backend_cpu_s()
        again = time.perf_counter()
        dup = import_file(project=project, path=path)
        dup_s = time.perf_counter() - again
        dup_cpu, dup_backend = time.process_time() - cpu, _backend_cpu_s() - backend
        assert dup.n_imported == 0 and dup.n_duplicates == n

        naive_project = project_create(name="bench-naive")
        with path.open(encoding="utf-8") as handle:
            lines = [line for line in itertools.islice(handle, args.naive_n) if line.strip()]
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
    load_after = os.getloadavg()

    bulk_rate = n / bulk_s
    print(f"file: {n} pairs, {size_mb:.1f} MB")
    print(
        f"bulk import (one pass, binary COPY, one transaction): {bulk_s:.1f} s, {bulk_rate:,.0f} pairs/s"
        f"  (CPU: this process {bulk_cpu:.1f} s, PostgreSQL backend {bulk_backend:.1f} s)"
    )
    print(
        f"re-import of the same file (all duplicates):    {dup_s:.1f} s, {n / dup_s:,.0f} pairs/s"
        f"  (CPU: this process {dup_cpu:.1f} s, PostgreSQL backend {dup_backend:.1f} s)"
    )
    peak_note = "" if peak_reset else " (peak not reset: includes generating the file)"
    print(f"memory: RSS before import {rss_before:.0f} MB, peak RSS during import {peak:.0f} MB{peak_note}")
    if lines:
        naive_rate = len(lines) / naive_s
        print(f"naive per-row save loop ({len(lines)} pairs):       {naive_s:.1f} s, {naive_rate:,.0f} pairs/s")
        print(f"ratio bulk/naive: {bulk_rate / naive_rate:.1f}x")
    print(f"load average (1/5/15 min): before {'/'.join(f'{x:.1f}' for x in load_before)}, "
          f"after {'/'.join(f'{x:.1f}' for x in load_after)}; {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
