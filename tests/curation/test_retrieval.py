"""ANN index over pair embeddings (pure module: numpy + faiss, no database)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation.retrieval import SearchResult, VectorIndex, l2_normalize, recall_at_k

DIM = 32


def _vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, dim)))


def _clustered(n: int, seed: int = 0, clusters: int = 100, noise: float = 0.6) -> np.ndarray:
    """Points around random centres (the many-prompts-per-topic shape of real embeddings), unit norm."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((clusters, DIM))
    return l2_normalize(centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, DIM)) * noise)


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    vectors = _vectors(5000)
    ids = np.arange(5000, dtype=np.int64) * 7 + 1000  # pair ids, not positions
    return ids, vectors


@pytest.fixture(scope="module")
def hnsw(corpus: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    ids, vectors = corpus
    index = VectorIndex(DIM, kind="hnsw", ef_construction=80, ef_search=64)
    index.add(ids, vectors, chunk_size=1000)
    return index


@pytest.fixture(scope="module")
def ivf(corpus: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    ids, vectors = corpus
    index = VectorIndex.build(ids, vectors, exact_below=1000)
    assert index.kind == "ivf"
    return index


@pytest.fixture(scope="module")
def flat(corpus: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    ids, vectors = corpus
    return VectorIndex.build(ids, vectors, exact_below=10_000)


def test_build_picks_exact_search_for_small_collections(corpus: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = corpus
    assert VectorIndex.build(ids, vectors, exact_below=10_000).kind == "flat"
    big = VectorIndex.build(ids[:2000], vectors[:2000], exact_below=1000)
    assert (big.kind, big.nlist, big.nprobe) == ("ivf", 45, 32)  # about sqrt(n) cells
    assert VectorIndex.build(ids[:2000], vectors[:2000], exact_below=1000, kind="hnsw").kind == "hnsw"


@pytest.mark.parametrize("which", ["flat", "hnsw", "ivf"])
def test_a_stored_vector_finds_itself_first(
    which: str, request: pytest.FixtureRequest, corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vectors = corpus
    index: VectorIndex = request.getfixturevalue(which)
    result = index.search(vectors[:50], k=5)
    assert result.ids.shape == (50, 5) and result.ids.dtype == np.int64
    assert result.similarities.dtype == np.float32
    assert (result.ids[:, 0] == ids[:50]).all()
    assert np.allclose(result.similarities[:, 0], 1.0, atol=1e-5)
    assert (np.diff(result.similarities, axis=1) <= 1e-6).all(), "best first"


def test_similarity_is_cosine(flat: VectorIndex, corpus: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = corpus
    query = _vectors(1, seed=99)
    result = flat.search(query, k=3)
    positions = (result.ids[0] - 1000) // 7
    assert np.allclose(result.similarities[0], vectors[positions] @ query[0], atol=1e-5)
    assert (result.ids[0] == ids[np.argsort(-(vectors @ query[0]))[:3]]).all()


def test_hnsw_recall_against_exact_search(hnsw: VectorIndex, flat: VectorIndex) -> None:
    queries = _vectors(200, seed=1)
    exact = flat.search(queries, k=10)
    approx = hnsw.search(queries, k=10)
    assert recall_at_k(approx.ids, exact.ids) >= 0.9


def test_ivf_recall_against_exact_search_on_clustered_data() -> None:
    vectors = _clustered(20_000)
    ids = np.arange(20_000, dtype=np.int64) + 10**9
    ivf = VectorIndex.build(ids, vectors)
    flat = VectorIndex.build(ids, vectors, kind="flat")
    queries = _clustered(200, seed=1)
    exact = flat.search(queries, k=8)
    assert (ivf.kind, ivf.nlist) == ("ivf", 141)
    assert recall_at_k(ivf.search(queries, k=8).ids, exact.ids) >= 0.95  # at the default nprobe
    ivf.nprobe = 1  # one cell of 141: neighbours across its border are missed
    assert recall_at_k(ivf.search(queries, k=8).ids, exact.ids) < 0.95


def test_ivf_is_trained_on_its_first_add_which_must_be_big_enough() -> None:
    index = VectorIndex(DIM, kind="ivf", nlist=64)
    with pytest.raises(ValueError, match="at least 64 vectors"):
        index.add(np.arange(10), _vectors(10))
    assert index.ntotal == 0
    index.add(np.arange(3000), _clustered(3000))
    index.add(np.arange(3000, 3100), _clustered(100, seed=5))  # later adds use the trained cells
    assert index.ntotal == 3100
    result = index.search(_clustered(100, seed=5)[:10], k=1)
    assert (result.ids[:, 0] == np.arange(3000, 3010)).all()


def test_exclude_ids_never_come_back(
    hnsw: VectorIndex, flat: VectorIndex, ivf: VectorIndex, corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    ids, vectors = corpus
    for index in (hnsw, flat, ivf):
        before = index.search(vectors[:20], k=8)
        banned = np.unique(before.ids[:, :4])
        after = index.search(vectors[:20], k=8, exclude_ids=banned)
        assert not np.isin(after.ids, banned).any()
        assert (after.ids >= 0).all(), "excluded vectors do not use up result slots"
    with pytest.raises(ValueError, match="exclude_ids"):
        flat.search(vectors[:1], k=3, exclude_ids=np.array([1.5]))


def test_fewer_vectors_than_k_pads_with_minus_one() -> None:
    index = VectorIndex.build(np.array([5, 6, 7]), _vectors(3))
    result = index.search(_vectors(2, seed=4), k=5)
    assert (result.ids[:, 3:] == -1).all()
    assert np.isneginf(result.similarities[:, 3:]).all()
    assert set(result.neighbours(["q1", "q2"])["q1"]) <= {
        (i, s) for i, s in zip(result.ids[0], result.similarities[0], strict=True)
    }
    assert [c for c, _ in result.neighbours(["q1", "q2"])["q2"]] == [int(i) for i in result.ids[1, :3]]


def test_save_load_roundtrip(
    tmp_path: Path, hnsw: VectorIndex, flat: VectorIndex, ivf: VectorIndex, corpus: tuple[np.ndarray, np.ndarray]
) -> None:
    _, vectors = corpus
    queries = vectors[100:120]
    hnsw.ef_search = 48
    ivf.nprobe = 7
    for name, index in (("hnsw.faiss", hnsw), ("flat.faiss", flat), ("ivf.faiss", ivf)):
        path = tmp_path / name
        index.save(path)
        loaded = VectorIndex.load(path)
        assert (loaded.kind, loaded.dim, loaded.ntotal, loaded.ef_search, loaded.nprobe, loaded.nlist) == (
            index.kind,
            index.dim,
            index.ntotal,
            index.ef_search,
            index.nprobe,
            index.nlist,
        )
        assert (loaded.ids() == index.ids()).all()
        a, b = index.search(queries, k=6), loaded.search(queries, k=6)
        assert (a.ids == b.ids).all() and np.allclose(a.similarities, b.similarities)
    hnsw.ef_search = 64
    ivf.nprobe = 32


def test_add_grows_the_index_and_rejects_known_ids() -> None:
    index = VectorIndex(DIM, kind="flat")
    index.add(np.arange(10), _vectors(10))
    index.add(np.arange(10, 15), _vectors(5, seed=2))
    assert index.ntotal == 15
    with pytest.raises(ValueError, match="id 3 is already"):
        index.add(np.array([3]), _vectors(1, seed=3))
    assert index.ntotal == 15


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.arange(4), np.zeros((4, DIM), dtype=np.float64), "float32"),
        (np.arange(4), [[0.0] * DIM] * 4, "numpy array"),
        (np.arange(4), l2_normalize(np.ones((4, DIM + 1))), r"shape \(n, 32\)"),
        (np.arange(4), l2_normalize(np.ones((4, DIM)))[0], r"shape \(n, 32\)"),
        (np.arange(4), np.ones((4, DIM), dtype=np.float32), "L2-normalised"),
        (np.arange(4), np.full((4, DIM), np.nan, dtype=np.float32), "NaN"),
        (np.arange(3), l2_normalize(np.ones((4, DIM))), "4 entries"),
        (np.array([0.0, 1.0, 2.0, 3.0]), l2_normalize(np.ones((4, DIM))), "integers"),
        (np.array([0, 1, 1, 2]), l2_normalize(np.ones((4, DIM))), "unique"),
        (np.array([-1, 0, 1, 2]), l2_normalize(np.ones((4, DIM))), ">= 0"),
    ],
)
def test_bad_input_is_a_clear_value_error(ids: object, vectors: object, message: str) -> None:
    index = VectorIndex(DIM, kind="flat")
    with pytest.raises(ValueError, match=message):
        index.add(ids, vectors)  # type: ignore[arg-type]
    assert index.ntotal == 0


def test_bad_query_and_k_are_rejected(flat: VectorIndex) -> None:
    with pytest.raises(ValueError, match="float32"):
        flat.search(np.zeros((1, DIM)), k=3)
    with pytest.raises(ValueError, match=r"shape \(n, 32\)"):
        flat.search(_vectors(1, dim=16), k=3)
    with pytest.raises(ValueError, match="k must be"):
        flat.search(_vectors(1), k=0)


def test_constructor_and_normalize_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be one of flat, ivf, hnsw"):
        VectorIndex(DIM, kind="ivfpq")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nlist"):
        VectorIndex(DIM, kind="ivf", nlist=0)
    with pytest.raises(ValueError, match="dim"):
        VectorIndex(0)
    with pytest.raises(ValueError, match="all zeros"):
        l2_normalize(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="ef_search"):
        VectorIndex(DIM, kind="flat").ef_search = 10
    with pytest.raises(ValueError, match="nprobe applies only"):
        VectorIndex(DIM, kind="flat").nprobe = 10
    with pytest.raises(ValueError, match="nprobe must be"):
        VectorIndex(DIM, kind="ivf").nprobe = 0
    assert VectorIndex(DIM, kind="hnsw").nprobe is None


def test_recall_at_k() -> None:
    exact = np.array([[1, 2, 3, 4], [5, 6, -1, -1], [-1, -1, -1, -1]])
    approx = np.array([[4, 3, 9, 8], [6, 5, -1, -1], [7, 7, 7, 7]])
    # row 0: 2/4, row 1: 2/2, row 2 has no ground truth and is skipped
    assert recall_at_k(approx, exact) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="same shape"):
        recall_at_k(approx[:, :2], exact)


def test_search_result_neighbours_feed_the_planner() -> None:
    result = SearchResult(ids=np.array([[3, 4, -1]]), similarities=np.array([[0.9, 0.8, -np.inf]], dtype=np.float32))
    assert result.neighbours([42]) == {42: [(3, pytest.approx(0.9)), (4, pytest.approx(0.8))]}
