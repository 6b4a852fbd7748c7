"""Fact-check search latency on PostgreSQL: full-text search (GIN) vs a naive ILIKE scan.

    .venv/bin/python bench/search_bench.py [--n 120000] [--queries 300]

Builds a corpus of at least ``--n`` documents of real text in a fresh database: the entries of the
Debian dictionaries installed under /usr/share/dictd (dict-gcide, dict-foldoc, dict-jargon), plus
the paragraphs of the shared data (hh-rlhf and summarize-from-feedback texts); when that is not
enough, the shared paragraphs are repeated as variants. Loads it through the real path
(``corpus_load``), then times ``corpus_search`` (the panel's query: rank with ts_rank_cd, top 10,
ts_headline snippets) over a few hundred queries made of words and phrases drawn from the
corpus, and the same queries as the naive way: ``ILIKE '%word%'`` on title and text for every
word, first 10 rows.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from _setup import fresh_postgres, shared_pairs

DICTD = Path("/usr/share/dictd")


def shared_paragraphs() -> list[tuple[str, str]]:
    """(title, text) paragraphs of the shared data's prompts and responses."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for row in shared_pairs():
        for field in ("prompt", "chosen", "rejected"):
            text = row.get(field) or ""
            for para in re.split(r"\n\s*\n|(?=Human:)|(?=Assistant:)", text):
                para = " ".join(para.split())
                if len(para) < 60 or para in seen:
                    continue
                seen.add(para)
                title = " ".join(para.split()[:8])
                out.append((title, para))
    return out


def documents(n: int) -> Iterator[dict[str, str]]:
    from annotation.tools.corpus import DEBIAN_DICTIONARIES, read_dictd

    count = 0
    for spec in DEBIAN_DICTIONARIES.values():
        base = DICTD / spec.database
        if not base.with_name(base.name + ".index").exists():
            continue
        for doc in read_dictd(base, url_template=spec.url_template):
            yield {**doc, "external_id": f"{spec.database}:{doc['external_id']}"}
            count += 1
    paragraphs = shared_paragraphs()
    variant = 0
    while count < n:
        for i, (title, text) in enumerate(paragraphs):
            label = f" (variant {variant})" if variant else ""
            yield {"external_id": f"shared:{variant}:{i}", "title": title + label, "text": text, "source_url": ""}
            count += 1
            if count >= n and variant:
                return
        variant += 1


def make_queries(k: int, seed: int = 0) -> list[str]:
    from django.db import connection

    rng = random.Random(seed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT title, text FROM annotation_corpusdocument TABLESAMPLE SYSTEM (2) LIMIT 5000")
        sample = cursor.fetchall()
    words = [w.lower() for title, text in sample for w in re.findall(r"[A-Za-z]{4,}", f"{title} {text}")]
    queries: list[str] = []
    while len(queries) < k:
        kind = rng.random()
        if kind < 0.5:
            queries.append(rng.choice(words))
        elif kind < 0.85:
            queries.append(f"{rng.choice(words)} {rng.choice(words)}")
        else:
            title, text = rng.choice(sample)
            tokens = re.findall(r"[A-Za-z]{3,}", text)
            if len(tokens) >= 3:
                start = rng.randrange(len(tokens) - 1)
                queries.append('"' + " ".join(tokens[start : start + 2]) + '"')
    return queries


def naive_search(query: str, limit: int = 10) -> list[int]:
    from django.db import connection

    from annotation.tools.highlight import parse_query

    words = parse_query(query).words
    clauses = " AND ".join("(title ILIKE %s OR text ILIKE %s)" for _ in words)
    params: list[object] = [p for w in words for p in (f"%{w}%", f"%{w}%")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM annotation_corpusdocument WHERE {clauses} ORDER BY id LIMIT %s", [*params, limit]
        )
        return [row[0] for row in cursor.fetchall()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=120_000, help="at least this many documents")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--naive-queries", type=int, default=100, help="the naive scan is slow: time fewer")
    args = parser.parse_args()
    fresh_postgres("synpref_bench_search")

    from django.db import connection

    from annotation.tools.search import corpus_search
    from annotation.tools.services import corpus_load

    start = time.perf_counter()
    corpus = corpus_load(name="bench", documents=documents(args.n), licence="mixed (see bench/search_bench.py)")
    load_s = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE annotation_corpusdocument")
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('annotation_corpusdocument'))")
        size = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('corpusdocument_search_gin'))")
        gin_size = cursor.fetchone()[0]
    print(
        f"corpus: {corpus.n_documents:,} documents loaded in {load_s:.1f} s ({corpus.n_documents / load_s:,.0f}/s); table {size}, GIN index {gin_size}"
    )

    queries = make_queries(args.queries)
    for q in queries[:20]:  # warm the cache as a running server would be
        corpus_search(q)
    fts_ms: list[float] = []
    hits = 0
    for q in queries:
        t = time.perf_counter()
        outcome = corpus_search(q, limit=10)
        fts_ms.append((time.perf_counter() - t) * 1000)
        hits += bool(outcome.hits)
    naive_ms: list[float] = []
    for q in queries[: args.naive_queries]:
        t = time.perf_counter()
        naive_search(q)
        naive_ms.append((time.perf_counter() - t) * 1000)

    same = fts_ms[: len(naive_ms)]
    print(f"queries: {len(queries)} (words, word pairs, quoted phrases drawn from the corpus); {hits} with results")
    print(
        f"full-text (GIN, ts_rank_cd top 10 + ts_headline): p50 {percentile(fts_ms, 50):.1f} ms, p95 {percentile(fts_ms, 95):.1f} ms, max {max(fts_ms):.1f} ms"
    )
    print(
        f"naive ILIKE '%word%' scan, first 10 ({len(naive_ms)} queries): p50 {percentile(naive_ms, 50):.1f} ms, p95 {percentile(naive_ms, 95):.1f} ms"
    )
    print(
        f"ratio naive/full-text on the same {len(naive_ms)} queries: p50 {percentile(naive_ms, 50) / percentile(same, 50):.1f}x, "
        f"p95 {percentile(naive_ms, 95) / percentile(same, 95):.1f}x, mean {statistics.mean(naive_ms) / statistics.mean(same):.1f}x"
    )


if __name__ == "__main__":
    main()
