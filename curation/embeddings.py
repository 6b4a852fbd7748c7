"""Embedding the unverified pool for retrieval, once per (pair, encoder, text), and the index over it.

Runs on a worker (the model loads inside): the ``gpu`` queue's ``curation.tasks.pool_embed`` task
embeds a project's pool ahead of a round, and a round's embed step calls the same
:func:`pool_embed` and then :func:`pool_index_build`. Vectors go to an
:class:`curation.embedding_store.EmbeddingStore` under ``MODEL_STORE_DIR/embeddings/project-<id>/
<encoder key>/``, so a pair is embedded once and every later round (or a run interrupted half way)
reuses what is there; a pair whose text changed (new attributes) is embedded again.

The encoder runs in batches of ``batch_size`` texts sorted by length, under ``torch.inference_mode``,
in bf16 autocast on CUDA (``rewardmodel.ml.embed.Embedder.embed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from annotation.models import Pair, Project
from curation.embedding_store import EmbeddingStore, text_hashes
from curation.retrieval import VectorIndex

logger = logging.getLogger(__name__)

#: Pairs read from the database, embedded and written as one part file at a time.
CHUNK = 2000


def pair_embedding_text(pair: Pair) -> str:
    """What is embedded for a pool pair: its conversation and the attributes in its metadata (if any)."""
    from rewardmodel.services import conversation_text  # torch loads inside: worker only

    attributes = pair.metadata.get("attributes") if isinstance(pair.metadata, dict) else None
    return conversation_text(pair.conversation, attributes if isinstance(attributes, dict) else {})


def embedding_store_get(*, project_id: int, encoder_key: str) -> EmbeddingStore:
    """The store of ``project_id``'s embeddings by the encoder ``encoder_key`` (``TextEmbedder.key``)."""
    return EmbeddingStore(Path(settings.MODEL_STORE_DIR) / "embeddings" / f"project-{project_id}" / encoder_key)


@dataclass(frozen=True)
class PoolEmbedding:
    """The outcome of :func:`pool_embed`: how many pairs were embedded now and how many were already stored."""

    store: EmbeddingStore
    embedded: int
    reused: int

    @property
    def total(self) -> int:
        return self.embedded + self.reused


def pool_embed(
    *,
    project_id: int,
    pair_ids: Sequence[int] | None = None,
    batch_size: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> PoolEmbedding:
    """Make sure every pair of ``pair_ids`` (None: the project's retrieval pool) has a stored embedding.

    Reads the pairs in chunks of :data:`CHUNK`; a pair whose (id, text hash) is already stored is
    skipped; the others are embedded (``batch_size`` texts per forward pass; None keeps the encoder's)
    and written as one part per chunk, so an interrupted call resumes at the chunk it was in. Holds
    the store's lock throughout: a second caller waits, then finds the work done. ``progress`` gets
    the fraction of pairs handled after each chunk. Ids that are not pairs of the project are ignored.
    """
    from rewardmodel.services import text_embedder_get  # torch loads inside: worker only

    if pair_ids is None:
        from curation.rounds import _pool_ids  # the rounds own the pool's definition

        pair_ids = _pool_ids(Project.objects.get(pk=project_id))
    embedder = text_embedder_get(batch_size=batch_size)
    store = embedding_store_get(project_id=project_id, encoder_key=embedder.key)
    ids = sorted(int(i) for i in pair_ids)
    embedded = reused = 0
    with store.lock():
        for start in range(0, len(ids), CHUNK):
            pairs = list(
                Pair.objects.filter(project_id=project_id, pk__in=ids[start : start + CHUNK])
                .only("pk", "conversation", "metadata")
                .order_by("pk")
            )
            texts = [pair_embedding_text(p) for p in pairs]
            chunk_ids = np.array([p.pk for p in pairs], dtype=np.int64)
            hashes = text_hashes(texts)
            todo = np.flatnonzero(store.missing(chunk_ids, hashes))
            reused += len(pairs) - todo.size
            if todo.size:
                vectors = np.asarray(embedder.embed([texts[i] for i in todo]), dtype=np.float32)
                store.append(chunk_ids[todo], hashes[todo], vectors)
                embedded += int(todo.size)
            if progress is not None:
                progress(min(1.0, (start + CHUNK) / max(1, len(ids))))
    logger.info("project %s pool: %d pairs embedded, %d already stored (%s)", project_id, embedded, reused, store.root)
    return PoolEmbedding(store=store, embedded=embedded, reused=reused)


def pool_index_build(*, store: EmbeddingStore, pair_ids: Sequence[int], dim: int, **options: Any) -> VectorIndex:
    """A :class:`VectorIndex` (``dim``-d) over the stored embeddings of ``pair_ids``; kind chosen by size.

    Exact search below ``exact_below`` pairs, ivf above (:meth:`VectorIndex.build`, which gets
    ``options``). Every id must have been embedded (:func:`pool_embed`); KeyError names the first
    that was not.
    """
    ids = np.array(sorted(int(i) for i in pair_ids), dtype=np.int64)
    if not ids.size:
        return VectorIndex(dim, kind="flat")
    return VectorIndex.build(ids, store.vectors(ids), **options)
