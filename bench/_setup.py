"""Shared set-up for benchmarks: a fresh PostgreSQL database, migrated, and Django configured."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/{name}"


def fresh_postgres(name: str) -> str:
    """Drop and recreate database ``name``, migrate it, and point Django at it. Returns the URL.

    ``BENCH_DATABASE_URL`` replaces the URL; the database it names is the one dropped and recreated.
    """
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG.format(name=name))
    base, name = url.rsplit("/", 1)
    base += "/postgres"
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    # Keep benchmark artefacts and broker messages away from the dev data under var/.
    os.environ.setdefault("VAR_DIR", str(Path(tempfile.gettempdir()) / "synpref-bench-var"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SYNPREF_DEV", "1")  # a local run: generated key under VAR_DIR (docs/security.md)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=os.environ.copy())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return url


def shared_pairs() -> list[dict]:
    rows = []
    for name in ("hh_dev.jsonl", "sff_comparisons.jsonl"):
        with (SHARED_DATA / name).open(encoding="utf-8") as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def generated_pairs(n: int, seed: int = 0) -> Iterator[dict]:
    """``n`` distinct pairs made from the shared data: real texts, each copy's prompt made unique."""
    rows = shared_pairs()
    rng = random.Random(seed)
    for i in range(n):
        row = dict(rows[i % len(rows)])
        if i >= len(rows):
            row["prompt"] = row["prompt"].replace("Human: ", f"Human: [variant {i}] ", 1)
        if rng.random() < 0.5:
            row["response_a"], row["response_b"] = row.pop("chosen"), row.pop("rejected")
        row["id"] = f"bench-{i}"
        yield row


def write_jsonl(path: Path, rows: Iterator[dict]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
