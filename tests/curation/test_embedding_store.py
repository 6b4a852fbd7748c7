"""Stored pair embeddings (pure module: numpy, files; no database)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation.embedding_store import EmbeddingStore, text_hash, text_hashes
from curation.retrieval import l2_normalize


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, 8)))


def test_vectors_come_back_in_the_asked_order_across_parts(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path / "s")
    a, b = _vectors(3), _vectors(2, seed=1)
    with store.lock():
        store.append([10, 11, 12], text_hashes(["a", "b", "c"]), a)
        store.append([5, 20], text_hashes(["d", "e"]), b)
    assert [p.name for p in store.parts()] == ["part-000001.npz", "part-000002.npz"]
    assert len(store) == 5 and store.dim() == 8
    np.testing.assert_array_equal(store.vectors([20, 10, 12, 5]), np.stack([b[1], a[0], a[2], b[0]]))
    with pytest.raises(KeyError, match="pair 7 has no stored embedding"):
        store.vectors([10, 7])


def test_missing_means_not_stored_or_stored_for_another_text(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path)
    assert store.missing([1, 2], text_hashes(["x", "y"])).tolist() == [True, True]
    store.append([1, 2], text_hashes(["x", "y"]), _vectors(2))
    assert store.missing([1, 2, 3], text_hashes(["x", "y changed", "z"])).tolist() == [False, True, True]
    # Re-embedding a changed text: the latest part wins, the old vector is no longer served.
    new = _vectors(1, seed=9)
    store.append([2], text_hashes(["y changed"]), new)
    assert store.missing([2], text_hashes(["y changed"])).tolist() == [False]
    np.testing.assert_array_equal(store.vectors([2])[0], new[0])
    assert len(store) == 2


def test_a_fresh_store_object_sees_what_another_wrote(tmp_path: Path) -> None:
    EmbeddingStore(tmp_path).append([4], text_hashes(["t"]), _vectors(1))
    # A writer killed mid-part leaves only a temporary file, which is not a part.
    (tmp_path / ".part-000002.npz.999.tmp").write_bytes(b"half a part")
    again = EmbeddingStore(tmp_path)
    assert len(again) == 1 and again.missing([4], text_hashes(["t"])).tolist() == [False]
    assert again.append([5], text_hashes(["u"]), _vectors(1)).name == "part-000002.npz"


@pytest.mark.parametrize(
    ("ids", "hashes", "vectors", "message"),
    [
        ([1, 2], text_hashes(["a", "b"]), _vectors(3), "3 vectors need 3 ids"),
        ([1, 1], text_hashes(["a", "b"]), _vectors(2), "distinct"),
        ([-1, 2], text_hashes(["a", "b"]), _vectors(2), ">= 0"),
        ([1, 2], np.array([1, 2]), _vectors(2), "uint64"),
        ([1, 2], text_hashes(["a", "b"]), _vectors(2).astype(np.float64), "float32"),
        ([1, 2], text_hashes(["a", "b"]), l2_normalize(np.ones((2, 4))), "8-d vectors, got 4-d"),
    ],
)
def test_bad_parts_are_refused_and_write_nothing(
    tmp_path: Path, ids: object, hashes: object, vectors: np.ndarray, message: str
) -> None:
    store = EmbeddingStore(tmp_path)
    store.append([100], text_hashes(["seed"]), _vectors(1))
    with pytest.raises(ValueError, match=message):
        store.append(ids, hashes, vectors)  # type: ignore[arg-type]
    assert len(store.parts()) == 1


def test_text_hash_is_stable_and_distinguishes_texts() -> None:
    assert text_hash("abc") == text_hash("abc") != text_hash("abd")
    assert text_hashes(["abc"]).dtype == np.uint64 and int(text_hashes(["abc"])[0]) == text_hash("abc")
