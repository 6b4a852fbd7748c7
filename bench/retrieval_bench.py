"""Benchmark: building the neighbour index over pair embeddings, old way (HNSW) vs new (IVF), and its recall.

    .venv/bin/python bench/retrieval_bench.py                        # 1,000,000 x 384; old HNSW at 200,000
    .venv/bin/python bench/retrieval_bench.py --n 100000 --old-n 100000  # smaller run

Data (seeded, generated in chunks into one preallocated matrix): clustered random unit vectors of
dim 384 (all-MiniLM-L6-v2's width). n/100 cluster centres ~ N(0, I); a point is centre +
N(0, noise^2 I), L2-normalised; with noise 0.6 a point has cosine ~0.86 to its centre, ~0.74 to
the ~100 other members of its cluster and ~0 to the rest: the "many near-duplicate prompts per
topic" shape of preference data. Isotropic uniform vectors would be the worst case for any ANN
index and unlike real embeddings; a larger --noise (e.g. 1.0: members at cosine ~0.5) is a
harder case. Queries are fresh points from the same mixture (a verified pair is not in the
unverified pool it searches).

Measured, in one run:
- new way: ``VectorIndex.build`` as rounds call it (ivf picked by size: k-means on a seeded
  sample, then vectors added in chunks; validation included), at --n and at --old-n;
- old way: ``VectorIndex(kind="hnsw", M=--m, efConstruction=--ef-construction)`` filled in
  --chunk chunks (what rounds did before), at --old-n only (at 1M it took 999 s here; pass
  --old-n equal to --n to time it at full size);
- exact search (IndexFlatIP through the same class): the ground truth of recall@k;
- for each --nprobe: single-query latency p50/p95 (one query per call, --search-threads
  threads), recall@k against exact search on --recall-queries queries; the same for old and
  new at --old-n, on a second data set of the same shape (--old-n/100 clusters);
- peak RSS of the process, RSS added by each build, and the load average before and after
  (the 2 cores are shared: a loaded machine slows every figure).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.retrieval import DEFAULT_NPROBE, VectorIndex, l2_normalize, recall_at_k  # noqa: E402

ID_OFFSET = 1_000_000_000  # ids are pair ids, not row positions


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, noise: float) -> np.ndarray:
    members = rng.integers(0, centres.shape[0], n)
    x = centres[members] + rng.standard_normal((n, centres.shape[1]), dtype=np.float32) * np.float32(noise)
    return l2_normalize(x)


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q))


def rss_gb() -> float:
    """Current resident set size (not the peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**3


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def single_query_latencies(index: VectorIndex, queries: np.ndarray, k: int) -> list[float]:
    times: list[float] = []
    for i in range(queries.shape[0]):
        start = time.perf_counter()
        index.search(queries[i : i + 1], k)
        times.append(time.perf_counter() - start)
    return times


def timed_build(label: str, make: object) -> tuple[VectorIndex, float, float, float]:
    """(index, wall s, CPU s, RSS added GB) of ``make()``."""
    before = rss_gb()
    t, c = time.perf_counter(), time.process_time()
    index = make()  # type: ignore[operator]
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    added = rss_gb() - before
    print(
        f"build {label}: {wall:.1f} s wall ({index.ntotal / wall:,.0f} vectors/s), {cpu:.1f} s CPU"
        f" (= {cpu / wall:.2f} cores busy), RSS +{added:.2f} GB; load average now {load()}",
        flush=True,
    )
    return index, wall, cpu, added


def dataset(n: int, dim: int, noise: float, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors, queries): n points in n/100 clusters, generated in chunks into one matrix."""
    rng = np.random.default_rng(seed)
    n_clusters = max(1, n // 100)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    print(f"data: {n:,} x {dim} float32 unit vectors, {n_clusters:,} clusters, noise {noise}")
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        size = min(50_000, n - start)
        x[start : start + size] = clustered(rng, centres, size, noise)
    return np.arange(n, dtype=np.int64) + ID_OFFSET, x, clustered(rng, centres, n_queries, noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--old-n", type=int, default=200_000, help="size for the old HNSW build (0: skip)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--m", type=int, default=32, help="old way: HNSW M")
    parser.add_argument("--ef-construction", type=int, default=80, help="old way: HNSW efConstruction")
    parser.add_argument("--ef-search", type=int, default=128, help="old way: HNSW efSearch (its default)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, DEFAULT_NPROBE, 64])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--recall-queries", type=int, default=300)
    parser.add_argument("--chunk", type=int, default=50_000, help="old way: vectors per add() call")
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=2, help="OpenMP threads for building and batch search (max 2)")
    parser.add_argument("--search-threads", type=int, default=1, help="OpenMP threads for the single-query timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    threads = min(args.threads, 2)
    faiss.omp_set_num_threads(threads)
    print(
        f"faiss {faiss.__version__}, numpy {np.__version__}, cpus {os.cpu_count()}, threads: build/batch {threads},"
        f" single-query {min(args.search_threads, 2)}; load average {load()}"
    )
    t = time.perf_counter()
    ids, x, queries = dataset(args.n, args.dim, args.noise, max(args.queries, args.recall_queries), args.seed)
    recall_q = queries[: args.recall_queries]
    print(f"data generated in {time.perf_counter() - t:.1f} s\n")

    new, new_s, _, _ = timed_build(f"new (VectorIndex.build) at {args.n:,}", lambda: VectorIndex.build(ids, x))
    print(f"  kind {new.kind}, nlist {new.nlist}, default nprobe {new.nprobe}")
    old_n = min(args.old_n, args.n)
    old = old_new = None
    if old_n:
        # Its own data of the same shape (old_n/100 clusters of ~100): the first old_n rows of the
        # big set would have clusters of ~20, a different (and for HNSW harder) case.
        o_ids, o_x, o_queries = dataset(old_n, args.dim, args.noise, len(queries), args.seed + 1)
        old_new, old_new_s, _, _ = timed_build(
            f"new (VectorIndex.build) at {old_n:,}", lambda: VectorIndex.build(o_ids, o_x)
        )

        def old_way() -> VectorIndex:
            index = VectorIndex(
                args.dim, kind="hnsw", m=args.m, ef_construction=args.ef_construction, ef_search=args.ef_search
            )
            for start in range(0, old_n, args.chunk):
                index.add(o_ids[start : start + args.chunk], o_x[start : start + args.chunk])
            return index

        old, old_s, _, _ = timed_build(
            f"old (HNSW M={args.m}, efConstruction={args.ef_construction}, chunks of {args.chunk:,}) at {old_n:,}",
            old_way,
        )
        print(f"  => at {old_n:,}: new build is {old_s / old_new_s:.1f}x faster than the old one")
        if old_n < args.n:
            # HNSW insertion costs about log(n) per vector, so the linear projection is a floor.
            projected = old_s * args.n / old_n
            print(
                f"  => old way projected to {args.n:,} (linear, a lower bound): >= {projected:.0f} s,"
                f" {projected / new_s:.0f}x the new build's {new_s:.1f} s"
            )
    flat, _, _, _ = timed_build(f"exact (flat) at {args.n:,}", lambda: VectorIndex.build(ids, x, kind="flat"))

    t = time.perf_counter()
    exact = flat.search(recall_q, args.k)
    exact_batch_s = time.perf_counter() - t
    faiss.omp_set_num_threads(min(args.search_threads, 2))
    exact_times = single_query_latencies(flat, queries[:20], args.k)
    print(
        f"\nexact (IndexFlatIP) at {args.n:,}: single query p50 {percentile_ms(exact_times, 50):.1f} ms,"
        f" p95 {percentile_ms(exact_times, 95):.1f} ms over 20 queries; batch of {args.recall_queries}"
        f" in {exact_batch_s:.2f} s"
    )
    exact_p50 = percentile_ms(exact_times, 50)
    print(f"\nnew ({new.kind}, nlist {new.nlist}) at {args.n:,}, k={args.k}:")
    print(f"{'nprobe':>8} {'p50 ms':>8} {'p95 ms':>8} {'recall@' + str(args.k):>9} {'speed-up vs exact p50':>22}")
    default_nprobe = new.nprobe
    for nprobe in args.nprobe:
        new.nprobe = nprobe
        faiss.omp_set_num_threads(min(args.search_threads, 2))
        times = single_query_latencies(new, queries[: args.queries], args.k)
        faiss.omp_set_num_threads(threads)
        recall = recall_at_k(new.search(recall_q, args.k).ids, exact.ids)
        mark = "   <- default" if nprobe == default_nprobe else ""
        print(
            f"{nprobe:>8} {percentile_ms(times, 50):>8.3f} {percentile_ms(times, 95):>8.3f} {recall:>9.4f}"
            f" {exact_p50 / percentile_ms(times, 50):>21.0f}x{mark}",
            flush=True,
        )
    if old is not None and old_new is not None:
        del flat
        o_recall_q = o_queries[: args.recall_queries]
        exact_old = VectorIndex.build(o_ids, o_x, kind="flat").search(o_recall_q, args.k)
        print(f"\nat {old_n:,} (old HNSW vs new, default search settings), k={args.k}:")
        for label, index in (
            (f"old hnsw efSearch {args.ef_search}", old),
            (f"new ivf nprobe {old_new.nprobe}", old_new),
        ):
            faiss.omp_set_num_threads(min(args.search_threads, 2))
            times = single_query_latencies(index, o_queries[: args.queries], args.k)
            faiss.omp_set_num_threads(threads)
            recall = recall_at_k(index.search(o_recall_q, args.k).ids, exact_old.ids)
            print(
                f"  {label:<24} p50 {percentile_ms(times, 50):.3f} ms, p95 {percentile_ms(times, 95):.3f} ms,"
                f" recall@{args.k} {recall:.4f}"
            )
    print(f"\npeak RSS {peak_rss_gb():.2f} GB (data matrix + all indexes resident); load average {load()}")


if __name__ == "__main__":
    main()
