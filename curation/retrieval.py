"""Approximate nearest-neighbour index over pair embeddings (faiss).

Pure module: numpy + faiss, no Django, no torch. Embeddings are float32 rows of unit L2
norm, so cosine similarity equals the inner product and the index uses
``METRIC_INNER_PRODUCT``. Ids are our pair ids (int64, >= 0; -1 is faiss's "no result").

Three index kinds behind one class:

* ``flat``: ``IndexIDMap2(IndexFlatIP(dim))`` -- exact brute force. :meth:`VectorIndex.build`
  picks it below ``exact_below`` vectors, where it is both exact and fast enough, and it is
  the ground truth for :func:`recall_at_k`.
* ``ivf``: ``IndexIDMap2(IndexIVFFlat(IndexFlatIP(dim), nlist, METRIC_INNER_PRODUCT))`` -- the
  vectors are split into ``nlist`` k-means cells (trained on a seeded sample of at most
  ``train_per_list * nlist`` vectors at the first add); a search scans the ``nprobe`` cells
  whose centroids are closest to the query. What :meth:`VectorIndex.build` picks from
  ``exact_below`` vectors on: building it is one k-means on a sample plus one matrix product
  per added chunk (BLAS), where an HNSW graph inserts vectors one by one, each a graph search
  (bench/retrieval_bench.py, figures in docs/benchmarks.md: 1M x 384 in 31 s of CPU, about 45x
  less than HNSW M=32 / efConstruction 80; recall@8 >= 0.95 at the default nprobe). Its
  weakness: a query near a cell border can miss neighbours in a cell it does not probe, so
  recall depends on the data; measure it (recall_at_k) and raise ``nprobe`` if needed.
* ``hnsw``: ``IndexIDMap2(IndexHNSWFlat(dim, M, METRIC_INNER_PRODUCT))`` -- a graph index,
  faster single queries than ivf at the same recall, but slow to build (only by asking for it).
  ``efConstruction`` (build quality) and ``efSearch`` (search breadth, always raised to at
  least ``k``) trade time for recall.

The index holds a copy of the vectors (4 * dim bytes each, 1.5 GB for 1M x 384) plus, for
HNSW, about ``M * 2 * 4`` bytes of graph links per vector (ivf: 8 bytes of id per vector and
the centroids). Threads: faiss uses OpenMP; callers on shared machines call
``faiss.omp_set_num_threads`` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

IndexKind = Literal["flat", "ivf", "hnsw"]
KINDS: tuple[IndexKind, ...] = ("flat", "ivf", "hnsw")

DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 80
DEFAULT_EF_SEARCH = 128
#: :meth:`VectorIndex.build` uses exact search below this many vectors.
DEFAULT_EXACT_BELOW = 10_000
DEFAULT_CHUNK_SIZE = 65_536
#: ivf: cells scanned per query (stored in the index, so it survives save/load).
DEFAULT_NPROBE = 32
#: ivf: at most this many training vectors per k-means cell (faiss warns below 39).
DEFAULT_TRAIN_PER_LIST = 40
#: ivf: k-means iterations (faiss's default is 25; 10 gives the same recall here, 2.5x sooner).
DEFAULT_KMEANS_ITERATIONS = 10
TRAIN_SEED = 1234
#: Largest accepted deviation of a row's L2 norm from 1.
NORM_TOLERANCE = 1e-3


def l2_normalize(vectors: npt.ArrayLike) -> np.ndarray:
    """Return float32 C-contiguous rows scaled to unit L2 norm.

    Raises ValueError for a non 2-D input, non-finite values or an all-zero row.
    """
    x = np.array(vectors, dtype=np.float32, copy=True, order="C")
    if x.ndim != 2:
        raise ValueError(f"vectors must be 2-D (n, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("vectors contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise ValueError(f"row {int(np.flatnonzero(norms == 0)[0])} is all zeros and cannot be normalised")
    x /= norms[:, None]
    return x


def default_nlist(n: int) -> int:
    """k-means cells for ``n`` vectors: about sqrt(n) (1,000 at 1M), at most n / 39 so that
    every cell has faiss's minimum of 39 training vectors, and at least 1."""
    return max(1, min(int(round(np.sqrt(max(n, 1)))), n // 39))


def _check_vectors(vectors: Any, dim: int, name: str) -> np.ndarray:
    if not isinstance(vectors, np.ndarray):
        raise ValueError(f"{name} must be a numpy array of float32, got {type(vectors).__name__}")
    if vectors.dtype != np.float32:
        raise ValueError(f"{name} must have dtype float32, got {vectors.dtype} (use l2_normalize())")
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {vectors.shape}")
    if vectors.shape[0] == 0:
        return np.ascontiguousarray(vectors)
    norms = np.linalg.norm(vectors, axis=1)
    if not np.isfinite(norms).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    worst = float(np.abs(norms - 1.0).max())
    if worst > NORM_TOLERANCE:
        raise ValueError(f"{name} must be L2-normalised (row norm off by {worst:.3g}); use l2_normalize()")
    return np.ascontiguousarray(vectors)


def _check_ids(ids: Any, n: int) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"ids must be 1-D with {n} entries (one per vector), got shape {arr.shape}")
    if n and arr.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if n and arr.min() < 0:
        raise ValueError(f"ids must be >= 0 (-1 means 'no result'), got {int(arr.min())}")
    ordered = np.sort(arr)  # sort-based: np.unique's hash path is far slower on 1M ids
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if repeated.size:
        raise ValueError(f"ids must be unique; {int(ordered[repeated[0]])} appears more than once")
    return np.ascontiguousarray(arr)


@dataclass(frozen=True)
class SearchResult:
    """Neighbours of each query, best first.

    ``ids``: (n_queries, k) int64; ``similarities``: (n_queries, k) float32 inner products
    (cosine). Slots without a result (fewer than k eligible vectors) hold id -1 and
    similarity -inf, always at the end of a row.
    """

    ids: np.ndarray
    similarities: np.ndarray

    def neighbours(self, query_ids: Sequence[Hashable]) -> dict[Hashable, list[tuple[int, float]]]:
        """``{query_id: [(candidate_id, similarity), ...]}`` without the -1 slots.

        The input shape of :func:`curation.sampling.plan_retrieval`.
        """
        if len(query_ids) != self.ids.shape[0]:
            raise ValueError(f"{len(query_ids)} query ids for {self.ids.shape[0]} result rows")
        return {
            q: [(int(i), float(s)) for i, s in zip(row_ids, row_sims, strict=True) if i >= 0]
            for q, row_ids, row_sims in zip(query_ids, self.ids, self.similarities, strict=True)
        }


class VectorIndex:
    """Cosine-similarity index from int64 pair ids to unit-norm float32 embeddings.

    Invariants: every stored vector has unit norm and a distinct id >= 0; ``dim`` and the
    kind never change after construction.
    """

    def __init__(
        self,
        dim: int,
        *,
        kind: IndexKind = "hnsw",
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        nlist: int = 1024,
        nprobe: int = DEFAULT_NPROBE,
        train_per_list: int = DEFAULT_TRAIN_PER_LIST,
        kmeans_iterations: int = DEFAULT_KMEANS_ITERATIONS,
        _index: Any = None,
    ) -> None:
        """An empty index. ``m``, ``ef_construction``, ``ef_search`` apply to hnsw; ``nlist``,
        ``nprobe``, ``train_per_list``, ``kmeans_iterations`` to ivf (trained at the first add,
        which must then bring at least ``nlist`` vectors; :meth:`build` sizes nlist itself)."""
        self._train_per_list = train_per_list
        if _index is not None:
            self._index = _index
            self._kind: IndexKind = kind
            return
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        for name, value in (
            ("m", m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
            ("nlist", nlist),
            ("nprobe", nprobe),
            ("train_per_list", train_per_list),
            ("kmeans_iterations", kmeans_iterations),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        inner: Any
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
            inner.hnsw.efSearch = ef_search
        elif kind == "ivf":
            # faiss's Python layer keeps the quantizer alive with the IVF index (and the IVF
            # index with the IDMap) through referenced_objects; a loaded file owns all three.
            inner = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            inner.nprobe = nprobe
            inner.cp.niter = kmeans_iterations
            inner.cp.seed = TRAIN_SEED
            # The sample is drawn here (seeded, see _train); faiss must not subsample it again.
            inner.cp.max_points_per_centroid = max(train_per_list, 1) + 1
        elif kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        else:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self._index = faiss.IndexIDMap2(inner)
        self._kind = kind

    @classmethod
    def build(
        cls,
        ids: npt.ArrayLike,
        vectors: np.ndarray,
        *,
        exact_below: int = DEFAULT_EXACT_BELOW,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        nprobe: int = DEFAULT_NPROBE,
        nlist: int | None = None,
        kind: IndexKind | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> VectorIndex:
        """Create an index for ``vectors`` (n, dim) with ``ids`` (n,).

        ``kind`` None picks by size: flat (exact) when n < exact_below, else ivf with
        ``nlist`` cells (None: :func:`default_nlist`), its k-means trained on a sample of all n
        vectors. hnsw only when asked for.
        """
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise ValueError(
                f"vectors must be a 2-D float32 numpy array, got {getattr(vectors, 'shape', type(vectors).__name__)}"
            )
        n = vectors.shape[0]
        if kind is None:
            kind = "flat" if n < exact_below else "ivf"
        if nlist is None:
            nlist = default_nlist(n)
        index = cls(
            vectors.shape[1],
            kind=kind,
            m=m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            nlist=nlist,
            nprobe=nprobe,
        )
        index.add(ids, vectors, chunk_size=chunk_size)
        return index

    # -- properties

    @property
    def kind(self) -> IndexKind:
        return self._kind

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    @property
    def ef_search(self) -> int | None:
        """HNSW search breadth (stored in the index, so it survives save/load); None for flat."""
        return int(self._hnsw().efSearch) if self._kind == "hnsw" else None

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        if self._kind != "hnsw":
            raise ValueError("ef_search applies only to an hnsw index")
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"ef_search must be a positive integer, got {value!r}")
        self._hnsw().efSearch = value

    @property
    def nprobe(self) -> int | None:
        """ivf cells scanned per query (stored in the index, so it survives save/load); None otherwise."""
        return int(self._ivf().nprobe) if self._kind == "ivf" else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self._kind != "ivf":
            raise ValueError("nprobe applies only to an ivf index")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"nprobe must be a positive integer, got {value!r}")
        self._ivf().nprobe = value

    @property
    def nlist(self) -> int | None:
        """ivf k-means cells; None for other kinds."""
        return int(self._ivf().nlist) if self._kind == "ivf" else None

    def _ivf(self) -> Any:
        return faiss.extract_index_ivf(self._index)

    def _hnsw(self) -> Any:
        inner: Any = faiss.downcast_index(self._index.index)
        return inner.hnsw

    def ids(self) -> np.ndarray:
        """All stored ids, in insertion order (int64 copy)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)

    # -- writing

    def add(self, ids: npt.ArrayLike, vectors: np.ndarray, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        """Add ``vectors`` (n, dim) float32 unit-norm under ``ids`` (n,) int >= 0, in chunks.

        Validates everything before adding anything. Raises ValueError on a bad shape,
        dtype or norm, or an id that is negative, repeated, or already in the index.
        """
        x = _check_vectors(vectors, self.dim, "vectors")
        id_arr = _check_ids(ids, x.shape[0])
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if self.ntotal and id_arr.size:
            clash = id_arr[np.isin(id_arr, self.ids())]
            if clash.size:
                raise ValueError(f"id {int(clash[0])} is already in the index")
        if self._kind == "ivf" and not self._index.is_trained and x.shape[0]:
            self._train(x)
        # Chunks bound the temporary memory of HNSW insertion and let callers report progress.
        for start in range(0, x.shape[0], chunk_size):
            self._index.add_with_ids(x[start : start + chunk_size], id_arr[start : start + chunk_size])

    def _train(self, x: np.ndarray) -> None:
        """k-means for an untrained ivf index on a seeded sample of ``x`` (at most train_per_list per cell)."""
        ivf = self._ivf()
        nlist = int(ivf.nlist)
        if x.shape[0] < nlist:
            raise ValueError(
                f"an ivf index with nlist={nlist} is trained on its first add, which needs at least {nlist}"
                f" vectors (got {x.shape[0]}); use VectorIndex.build(), which sizes nlist, or a smaller nlist"
            )
        cap = self._train_per_list * nlist
        if x.shape[0] > cap:
            rows = np.sort(np.random.default_rng(TRAIN_SEED).choice(x.shape[0], cap, replace=False))
            x = x[rows]
        # Quieter than faiss's own "please provide at least 39 x nlist points" on stderr.
        ivf.cp.verbose = False
        ivf.train(x)

    # -- reading

    def search(self, queries: np.ndarray, k: int, *, exclude_ids: npt.ArrayLike | None = None) -> SearchResult:
        """The ``k`` most similar stored vectors for each query row, best first.

        ``queries``: (n_queries, dim) float32 unit-norm. ``exclude_ids``: ids never to return
        (e.g. the verified pairs themselves); applied inside the search through a faiss id
        selector, so excluded vectors do not use up result slots. With HNSW a very large
        exclusion can leave slots empty (-1 / -inf).
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        q = _check_vectors(queries, self.dim, "queries")
        k = int(k)
        keep_alive: list[Any] = []  # faiss selectors hold raw pointers to each other
        selector = None
        if exclude_ids is not None:
            excl = np.asarray(exclude_ids)
            if excl.ndim != 1 or (excl.size and excl.dtype.kind not in "iu"):
                raise ValueError(
                    f"exclude_ids must be a 1-D array of integer ids, got shape {excl.shape}, dtype {excl.dtype}"
                )
            if excl.size:
                excl = np.ascontiguousarray(excl, dtype=np.int64)
                batch = faiss.IDSelectorBatch(excl)
                selector = faiss.IDSelectorNot(batch)
                keep_alive += [excl, batch, selector]
        if self._kind == "hnsw":
            params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
            params.efSearch = max(int(self._hnsw().efSearch), k)
        elif self._kind == "ivf":
            params = faiss.SearchParametersIVF()  # type: ignore[attr-defined]  # missing from faiss's stubs
            params.nprobe = int(self._ivf().nprobe)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        keep_alive.append(params)
        similarities, ids = self._index.search(q, k, params=params)
        similarities = similarities.astype(np.float32, copy=False)
        similarities[ids < 0] = -np.inf
        return SearchResult(ids=ids.astype(np.int64, copy=False), similarities=similarities)

    # -- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (vectors, graph or cells, ids, efSearch / nprobe) to one faiss file at ``path``."""
        faiss.write_index(self._index, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> VectorIndex:
        """Read an index written by :meth:`save`. Raises ValueError for another kind of faiss file."""
        index = faiss.read_index(os.fspath(path))
        if not isinstance(index, faiss.IndexIDMap2):
            raise ValueError(f"{os.fspath(path)} is not a VectorIndex file (got {type(index).__name__})")
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSWFlat) and inner.metric_type == faiss.METRIC_INNER_PRODUCT:
            kind: IndexKind = "hnsw"
        elif isinstance(inner, faiss.IndexIVFFlat) and inner.metric_type == faiss.METRIC_INNER_PRODUCT:
            kind = "ivf"
        elif isinstance(inner, faiss.IndexFlatIP):
            kind = "flat"
        else:
            raise ValueError(f"{os.fspath(path)} holds an unsupported index ({type(inner).__name__})")
        return cls(int(index.d), kind=kind, _index=index)


def recall_at_k(approx_ids: npt.ArrayLike, exact_ids: npt.ArrayLike) -> float:
    """Mean over queries of |approx ∩ exact| / |exact|, ignoring -1 slots.

    Both arguments are (n_queries, k) id arrays from searches with the same k; ``exact_ids``
    is the ground truth (a flat index). Queries whose exact row is empty are skipped;
    returns 1.0 if none remains. Raises ValueError on mismatched shapes.
    """
    approx = np.asarray(approx_ids)
    exact = np.asarray(exact_ids)
    if approx.ndim != 2 or approx.shape != exact.shape:
        raise ValueError(
            f"approx_ids and exact_ids must be 2-D of the same shape, got {approx.shape} and {exact.shape}"
        )
    hits = (approx[:, :, None] == exact[:, None, :]) & (exact[:, None, :] >= 0)
    found = hits.any(axis=1).sum(axis=1)
    size = (exact >= 0).sum(axis=1)
    rows = size > 0
    if not rows.any():
        return 1.0
    return float((found[rows] / size[rows]).mean())
