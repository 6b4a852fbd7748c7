"""Benchmark: HNSW retrieval over pair embeddings vs exact search.

    .venv/bin/python bench/retrieval_bench.py                  # 1,000,000 x 384
    .venv/bin/python bench/retrieval_bench.py --n 100000       # smaller run

Data (seeded, generated in chunks so the raw matrix is never held whole): clustered random
unit vectors of dim 384 (all-MiniLM-L6-v2's width). n/100 cluster centres ~ N(0, I); a
point is centre + N(0, 0.6^2 I), L2-normalised, so a point has cosine ~0.86 to its centre,
~0.74 to the ~100 other members of its cluster and ~0 to the rest: the "many near-duplicate
prompts per topic" shape of preference data. Isotropic uniform vectors would be the
worst case for any ANN index and unlike real embeddings; clusters of near-equidistant
members are still a hard case for top-8 recall. Queries are fresh points from the same
mixture (a verified pair is not in the unverified pool it searches).

Measured: build time of the HNSW index (curation.retrieval.VectorIndex, vectors added in
chunks, validation included); single-query latency (one query per call, p50/p95 over
--queries calls, k=8); recall@8 of HNSW against exact search (IndexFlatIP through the same
class) on --recall-queries queries; exact single-query latency on --exact-queries calls
(a flat scan reads all n x dim x 4 bytes per query, so fewer calls). Threads: at most 2 for
building and batch search; single-query timings use --search-threads (default 1).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.retrieval import VectorIndex, l2_normalize, recall_at_k  # noqa: E402

ID_OFFSET = 1_000_000_000  # ids are pair ids, not row positions


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    members = rng.integers(0, centres.shape[0], n)
    x = centres[members] + rng.standard_normal((n, centres.shape[1]), dtype=np.float32) * np.float32(noise)
    return l2_normalize(x)


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def single_query_latencies(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    times: list[float] = []
    ids = np.empty((queries.shape[0], k), dtype=np.int64)
    for i in range(queries.shape[0]):
        q = queries[i : i + 1]
        start = time.perf_counter()
        result = index.search(q, k)
        times.append(time.perf_counter() - start)
        ids[i] = result.ids[0]
    return times, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--exact-queries", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=2, help="OpenMP threads for building and batch search (max 2)")
    parser.add_argument("--search-threads", type=int, default=1, help="OpenMP threads for the single-query timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    faiss.omp_set_num_threads(min(args.threads, 2))
    rng = np.random.default_rng(args.seed)
    n_clusters = max(1, args.n // 100)
    centres = rng.standard_normal((n_clusters, args.dim), dtype=np.float32)
    print(
        f"faiss {faiss.__version__}, numpy {np.__version__}, threads: build/batch {min(args.threads, 2)},"
        f" single-query {min(args.search_threads, 2)}"
    )
    print(f"data: {args.n:,} x {args.dim} float32 unit vectors, {n_clusters:,} clusters, noise {args.noise}")
    print(f"HNSW: M={args.m}, efConstruction={args.ef_construction}, efSearch={args.ef_search}, k={args.k}")

    hnsw = VectorIndex(
        args.dim, kind="hnsw", m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search[0]
    )
    flat = VectorIndex(args.dim, kind="flat")
    gen_s = hnsw_s = flat_s = hnsw_cpu_s = 0.0
    for start in range(0, args.n, args.chunk):
        size = min(args.chunk, args.n - start)
        t = time.perf_counter()
        x = clustered(rng, centres, size, args.noise)
        ids = np.arange(start, start + size, dtype=np.int64) + ID_OFFSET
        gen_s += time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        hnsw.add(ids, x)
        hnsw_s += time.perf_counter() - t
        hnsw_cpu_s += time.process_time() - c
        t = time.perf_counter()
        flat.add(ids, x)
        flat_s += time.perf_counter() - t
        print(
            f"  added {start + size:>9,} / {args.n:,}  hnsw build so far {hnsw_s:7.1f} s wall, {hnsw_cpu_s:7.1f} s CPU",
            flush=True,
        )
    print(
        f"build: HNSW {hnsw_s:.1f} s wall ({args.n / hnsw_s:,.0f} vectors/s), {hnsw_cpu_s:.1f} s CPU"
        f" (= {hnsw_cpu_s / hnsw_s:.2f} cores busy on average); flat (exact) {flat_s:.1f} s; data generation {gen_s:.1f} s"
    )

    queries = clustered(rng, centres, max(args.queries, args.recall_queries), args.noise)
    recall_q = queries[: args.recall_queries]
    # One query uses one thread anyway; a second OpenMP thread only adds a barrier that can
    # stall for a scheduler slice on a shared machine. Batch searches keep --threads.
    t = time.perf_counter()
    exact = flat.search(recall_q, args.k)
    exact_batch_s = time.perf_counter() - t
    faiss.omp_set_num_threads(min(args.search_threads, 2))
    exact_times, _ = single_query_latencies(flat, queries[: args.exact_queries], args.k)
    exact_p50 = percentile_ms(exact_times, 50)
    print()
    print(
        f"exact (IndexFlatIP): single query p50 {exact_p50:.1f} ms, p95 {percentile_ms(exact_times, 95):.1f} ms"
        f" over {args.exact_queries} queries; batch of {args.recall_queries} in {exact_batch_s:.2f} s"
        f" ({exact_batch_s / args.recall_queries * 1000:.1f} ms/query)"
    )
    print()
    # recall@k counts exact-id matches; inside a cluster many neighbours are near-ties, so also
    # report how close the returned similarities are to the true top-k ones.
    exact_mean_sim = float(exact.similarities.mean())
    print(
        f"{'efSearch':>8} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'recall@' + str(args.k):>9}"
        f" {'sim ratio':>9} {'speed-up vs exact p50':>22}"
    )
    for ef in args.ef_search:
        hnsw.ef_search = ef
        faiss.omp_set_num_threads(min(args.search_threads, 2))
        times, _ = single_query_latencies(hnsw, queries[: args.queries], args.k)
        faiss.omp_set_num_threads(min(args.threads, 2))
        approx = hnsw.search(recall_q, args.k)
        recall = recall_at_k(approx.ids, exact.ids)
        sim_ratio = float(approx.similarities.mean()) / exact_mean_sim
        p50 = percentile_ms(times, 50)
        print(
            f"{ef:>8} {p50:>8.3f} {percentile_ms(times, 95):>8.3f} {np.mean(times) * 1000:>8.3f} {recall:>9.4f}"
            f" {sim_ratio:>9.4f} {exact_p50 / p50:>21.0f}x"
        )
    print(
        f"(sim ratio = mean cosine of the HNSW top-{args.k} / mean cosine of the exact top-{args.k}, {exact_mean_sim:.4f})"
    )
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"\npeak RSS {rss_gb:.2f} GB (HNSW + flat indexes both resident)")


if __name__ == "__main__":
    main()
