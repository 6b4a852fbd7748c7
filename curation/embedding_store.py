"""Pair embeddings on disk: computed once per (pair, encoder, text), reused by every later round.

Pure module: numpy and the standard library, no Django, no torch. One store is a directory (the
caller files it under the project and the encoder's key, ``Embedder.key``) of append-only part
files ``part-000001.npz``, each holding ``ids`` (n,) int64 pair ids, ``hashes`` (n,) uint64
digests of the embedded text, and ``vectors`` (n, dim) float32 unit rows. A part is written to a
temporary name and renamed, so a killed writer leaves either a whole part or none: an
interrupted embedding run resumes where its last part ended. When a pair's text changes (its
attributes were edited) it is embedded again into a later part; the latest part wins.

Writers take :meth:`EmbeddingStore.lock` (an ``flock`` on ``.lock`` in the directory), so two
workers embedding the same pool do the work once: the second waits, then finds it done.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

PART = re.compile(r"^part-(\d{6,})\.npz$")


def text_hash(text: str) -> int:
    """64-bit digest of the text that was embedded (blake2b): detects a pair whose text changed."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """(n,) uint64 :func:`text_hash` of each text."""
    return np.fromiter((text_hash(t) for t in texts), dtype=np.uint64, count=len(texts))


class EmbeddingStore:
    """Append-only embeddings of one encoder for one set of pairs, in part files under ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._catalog: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- writing

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for a writer (blocks while another process holds it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, ids: npt.ArrayLike, hashes: npt.ArrayLike, vectors: np.ndarray) -> Path:
        """Write one part: ``ids`` (n,) int >= 0, distinct; ``hashes`` (n,) uint64; ``vectors`` (n, dim) float32.

        Raises ValueError on mismatched lengths, a bad dtype or a dimension other than the store's.
        Call it under :meth:`lock`.
        """
        id_arr = np.asarray(ids)
        hash_arr = np.asarray(hashes)
        if not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32 or vectors.ndim != 2:
            raise ValueError(f"vectors must be a 2-D float32 array, got {getattr(vectors, 'dtype', type(vectors))}")
        n = vectors.shape[0]
        if id_arr.shape != (n,) or hash_arr.shape != (n,):
            raise ValueError(f"{n} vectors need {n} ids and {n} hashes, got {id_arr.shape} and {hash_arr.shape}")
        if n and (id_arr.dtype.kind not in "iu" or id_arr.min() < 0):
            raise ValueError("ids must be integers >= 0")
        if hash_arr.dtype != np.uint64:
            raise ValueError(f"hashes must be uint64 (text_hashes()), got {hash_arr.dtype}")
        if np.unique(id_arr).size != n:
            raise ValueError("ids must be distinct within a part")
        dim = self.dim()
        if dim is not None and n and vectors.shape[1] != dim:
            raise ValueError(f"this store holds {dim}-d vectors, got {vectors.shape[1]}-d")
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for m in map(PART.match, os.listdir(self.root)) if m]
        path = self.root / f"part-{max(numbers, default=0) + 1:06d}.npz"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=id_arr.astype(np.int64), hashes=hash_arr, vectors=vectors)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        self._catalog = None
        return path

    # -- reading

    def parts(self) -> list[Path]:
        """Part files, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(self.root / name for name in os.listdir(self.root) if PART.match(name))

    def dim(self) -> int | None:
        """The vectors' dimension, or None while the store is empty."""
        for path in self.parts():
            with np.load(path) as part:
                return int(part["vectors"].shape[1])
        return None

    def catalog(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, hashes, part_numbers, rows)``: the latest stored entry of every pair, sorted by id."""
        if self._catalog is None:
            ids, hashes, parts, rows = [], [], [], []
            for number, path in enumerate(self.parts()):
                with np.load(path) as part:
                    part_ids = part["ids"]
                    ids.append(part_ids)
                    hashes.append(part["hashes"])
                parts.append(np.full(part_ids.shape[0], number, dtype=np.int64))
                rows.append(np.arange(part_ids.shape[0], dtype=np.int64))
            if not ids:
                empty = np.zeros(0, dtype=np.int64)
                self._catalog = (empty, np.zeros(0, dtype=np.uint64), empty, empty)
                return self._catalog
            all_ids = np.concatenate(ids)
            # Stable sort by id, then the last occurrence of each id (the latest part) wins.
            order = np.argsort(all_ids, kind="stable")
            sorted_ids = all_ids[order]
            last = np.ones(sorted_ids.shape[0], dtype=bool)
            last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
            pick = order[last]
            self._catalog = (
                all_ids[pick],
                np.concatenate(hashes)[pick],
                np.concatenate(parts)[pick],
                np.concatenate(rows)[pick],
            )
        return self._catalog

    def missing(self, ids: npt.ArrayLike, hashes: npt.ArrayLike) -> np.ndarray:
        """Boolean mask over ``ids``: True where the store has no vector for that id with that text hash."""
        id_arr = np.asarray(ids, dtype=np.int64)
        hash_arr = np.asarray(hashes, dtype=np.uint64)
        known_ids, known_hashes, _, _ = self.catalog()
        if not known_ids.size:
            return np.ones(id_arr.shape[0], dtype=bool)
        pos = np.clip(np.searchsorted(known_ids, id_arr), 0, known_ids.size - 1)
        found = (known_ids[pos] == id_arr) & (known_hashes[pos] == hash_arr)
        return ~found

    def vectors(self, ids: npt.ArrayLike) -> np.ndarray:
        """(len(ids), dim) float32 latest vectors of ``ids``, in the given order. KeyError names a missing id."""
        id_arr = np.asarray(ids, dtype=np.int64)
        known_ids, _, part_numbers, rows = self.catalog()
        dim = self.dim()
        if dim is None:
            if id_arr.size:
                raise KeyError(f"pair {int(id_arr[0])} has no stored embedding (the store is empty)")
            return np.zeros((0, 0), dtype=np.float32)
        pos = np.clip(np.searchsorted(known_ids, id_arr), 0, max(known_ids.size - 1, 0))
        absent = known_ids[pos] != id_arr
        if absent.any():
            raise KeyError(f"pair {int(id_arr[np.flatnonzero(absent)[0]])} has no stored embedding")
        out = np.empty((id_arr.shape[0], dim), dtype=np.float32)
        wanted_parts = part_numbers[pos]
        paths = self.parts()
        for number in np.unique(wanted_parts):
            sel = np.flatnonzero(wanted_parts == number)
            with np.load(paths[int(number)]) as part:
                out[sel] = part["vectors"][rows[pos[sel]]]
        return out

    def __len__(self) -> int:
        return int(self.catalog()[0].size)
