"""Approximate nearest-neighbour index over pair embeddings (faiss).

Pure module: numpy + faiss, no Django, no torch. Embeddings are float32 rows of unit L2
norm, so cosine similarity equals the inner product and the index uses
``METRIC_INNER_PRODUCT``. Ids are our pair ids (int64, >= 0; -1 is faiss's "no result").

Two index kinds behind one class:

* ``hnsw``: ``IndexIDMap2(IndexHNSWFlat(dim, M, METRIC_INNER_PRODUCT))`` -- a graph index,
  sub-linear search, approximate. ``efConstruction`` (build quality) and ``efSearch``
  (search breadth, always raised to at least ``k``) trade time for recall.
* ``flat``: ``IndexIDMap2(IndexFlatIP(dim))`` -- exact brute force. :meth:`VectorIndex.build`
  picks it below ``exact_below`` vectors, where it is both exact and fast enough, and it is
  the ground truth for :func:`recall_at_k`.

The index holds a copy of the vectors (4 * dim bytes each, 1.5 GB for 1M x 384) plus, for
HNSW, about ``M * 2 * 4`` bytes of graph links per vector. Threads: faiss uses OpenMP;
callers on shared machines call ``faiss.omp_set_num_threads`` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import faiss
import numpy as np
import numpy.typing as npt

IndexKind = Literal["hnsw", "flat"]

DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 80
DEFAULT_EF_SEARCH = 128
#: :meth:`VectorIndex.build` uses exact search below this many vectors.
DEFAULT_EXACT_BELOW = 10_000
DEFAULT_CHUNK_SIZE = 65_536
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
        _index: Any = None,
    ) -> None:
        if _index is not None:
            self._index = _index
            self._kind: IndexKind = kind
            return
        if not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        for name, value in (("m", m), ("ef_construction", ef_construction), ("ef_search", ef_search)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        inner: Any
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
            inner.hnsw.efSearch = ef_search
        elif kind == "flat":
            inner = faiss.IndexFlatIP(dim)
        else:
            raise ValueError(f"kind must be 'hnsw' or 'flat', got {kind!r}")
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
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> VectorIndex:
        """Create an index for ``vectors`` (n, dim) with ``ids`` (n,): flat when n < exact_below, else HNSW."""
        if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
            raise ValueError(
                f"vectors must be a 2-D float32 numpy array, got {getattr(vectors, 'shape', type(vectors).__name__)}"
            )
        kind: IndexKind = "flat" if vectors.shape[0] < exact_below else "hnsw"
        index = cls(vectors.shape[1], kind=kind, m=m, ef_construction=ef_construction, ef_search=ef_search)
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
        # Chunks bound the temporary memory of HNSW insertion and let callers report progress.
        for start in range(0, x.shape[0], chunk_size):
            self._index.add_with_ids(x[start : start + chunk_size], id_arr[start : start + chunk_size])

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
        """Write the index (vectors, graph, ids, efSearch) to one faiss file at ``path``."""
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
