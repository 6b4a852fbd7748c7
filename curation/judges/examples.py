"""Which human-verified examples a judge sees for a target pair (pure: no Django, no torch).

- How many: ``k`` from the rounds' rule (:func:`curation.sampling.neighbours_for_probability`)
  with ``k_max`` = the judge's ``max_examples`` (at most 8): all ``k_max`` when the reward model
  disagrees with the pair's label or there is no score, fewer when it is confident.
- Which: the ``k`` most similar examples by cosine similarity of the retrieval text (conversation +
  attributes, the rounds' key). :class:`VectorRetriever` takes embeddings (the packaged MiniLM in a
  worker, searched with :class:`curation.retrieval.VectorIndex`); :class:`LexicalRetriever` is the
  dependency-free fallback (bag-of-words cosine) for tests and machines without the encoder.
- Examples never include the target itself, and the held-out slice used to measure the judges
  (:func:`in_heldout`) never becomes an example.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from curation.sampling import neighbours_for_probability

_WORD = re.compile(r"[a-z0-9]+")


def examples_wanted(p: float | None, k_max: int) -> int:
    """How many examples a target gets: ``k_max`` without a score, else the rounds' k(p)."""
    if k_max <= 0:
        return 0
    if p is None:
        return k_max
    return neighbours_for_probability(p, k_max)


def in_heldout(pair_id: int, fraction: float) -> bool:
    """The fixed held-out slice of D_gold the judges are measured on (never shown as an example)."""
    digest = hashlib.sha256(f"judge-heldout:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def retrieval_text(conversation: Sequence[dict[str, Any]], attributes: dict[str, Any] | None = None) -> str:
    """Conversation + attributes as one text, as ``rewardmodel.ml.data.conversation_text`` renders it."""
    lines = []
    for key in sorted(attributes or {}):
        value = (attributes or {})[key]
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{key}: {value}")
    names = {"user": "User", "assistant": "Assistant", "system": "System"}
    body = "\n".join(f"{names.get(str(m.get('role')), m.get('role'))}: {m.get('content', '')}" for m in conversation)
    return "\n".join([*lines, body]) if lines else body


class Retriever(Protocol):
    def nearest(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """For each query text, up to ``k`` example ids, most similar first."""
        ...


class LexicalRetriever:
    """Bag-of-words cosine similarity over the examples' texts (exact, dependency-free)."""

    def __init__(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        self.ids = list(ids)
        self._bags = [self._bag(t) for t in texts]

    @staticmethod
    def _bag(text: str) -> tuple[Counter[str], float]:
        bag = Counter(_WORD.findall(text.lower()))
        return bag, math.sqrt(sum(n * n for n in bag.values()))

    def nearest(self, queries: Sequence[str], k: int) -> list[list[int]]:
        found: list[list[int]] = []
        for query in queries:
            q, q_norm = self._bag(query)
            scored = []
            for pid, (bag, norm) in zip(self.ids, self._bags, strict=True):
                dot = sum(n * bag[w] for w, n in q.items() if w in bag)
                scored.append((dot / (q_norm * norm) if q_norm and norm else 0.0, pid))
            scored.sort(key=lambda item: (-item[0], item[1]))
            found.append([pid for _, pid in scored[:k]])
        return found


class VectorRetriever:
    """Cosine similarity of embeddings through the rounds' ANN index (exact below 10k examples)."""

    def __init__(self, ids: Sequence[int], texts: Sequence[str], embed: Callable[[Sequence[str]], np.ndarray]) -> None:
        from curation.retrieval import VectorIndex

        self.embed = embed
        self.index = VectorIndex.build(np.asarray(list(ids), dtype=np.int64), embed(list(texts))) if ids else None

    def nearest(self, queries: Sequence[str], k: int) -> list[list[int]]:
        if self.index is None or not len(self.index) or k <= 0:
            return [[] for _ in queries]
        result = self.index.search(self.embed(list(queries)), min(k, len(self.index)))
        return [[int(i) for i in row if i >= 0] for row in result.ids]


def pick_examples(
    retriever: Retriever, query: str, k: int, *, exclude: set[int] | frozenset[int] = frozenset()
) -> list[int]:
    """The ``k`` nearest example ids for ``query``, without ``exclude`` (the target itself)."""
    if k <= 0:
        return []
    (found,) = retriever.nearest([query], k + len(exclude))
    return [pid for pid in found if pid not in exclude][:k]
