"""Embedding the retrieval pool once per (pair, encoder, text), with the packaged MiniLM, and the index over it."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pytest

from annotation.models import Pair
from curation.embeddings import embedding_store_get, pair_embedding_text, pool_embed, pool_index_build
from tests.conftest import wait_for


def _ids(project: Any) -> list[int]:
    return list(Pair.objects.filter(project=project).order_by("pk").values_list("pk", flat=True))


def test_pool_is_embedded_once_and_resumed_not_redone(loaded_project: Any) -> None:
    ids = _ids(loaded_project)
    first = pool_embed(project_id=loaded_project.pk, pair_ids=ids[:12], batch_size=4)
    assert (first.embedded, first.reused) == (12, 0)
    # The whole pool now: the first 12 are reused (as after a worker died half way), the rest embedded.
    from rewardmodel.services import text_embedder_get

    embedder = text_embedder_get()
    with mock.patch.object(embedder, "embed", wraps=embedder.embed) as embed:
        second = pool_embed(project_id=loaded_project.pk, pair_ids=ids, batch_size=4)
    assert (second.embedded, second.reused) == (len(ids) - 12, 12)
    assert sum(len(call.args[0]) for call in embed.call_args_list) == len(ids) - 12
    store = second.store
    assert len(store) == len(ids) and store.dim() == embedder.dim == 384
    # Stored vectors are what the encoder gives for the pair's text.
    pair = Pair.objects.get(pk=ids[15])
    np.testing.assert_allclose(store.vectors([pair.pk])[0], embedder.embed([pair_embedding_text(pair)])[0], atol=1e-5)


def test_a_pair_whose_attributes_changed_is_embedded_again(loaded_project: Any) -> None:
    ids = _ids(loaded_project)
    done = pool_embed(project_id=loaded_project.pk, pair_ids=ids)
    before = done.store.vectors([ids[3]])[0]
    pair = Pair.objects.get(pk=ids[3])
    pair.metadata = {**(pair.metadata or {}), "attributes": {"task category": "cooking"}}
    pair.save(update_fields=["metadata"])
    again = pool_embed(project_id=loaded_project.pk, pair_ids=ids)
    assert (again.embedded, again.reused) == (1, len(ids) - 1)
    assert not np.allclose(again.store.vectors([ids[3]])[0], before)


def test_the_index_over_stored_embeddings_finds_each_pair_itself(loaded_project: Any) -> None:
    ids = _ids(loaded_project)
    done = pool_embed(project_id=loaded_project.pk, pair_ids=ids)
    index = pool_index_build(store=done.store, pair_ids=ids, dim=384)
    assert index.kind == "flat" and index.ntotal == len(ids)
    result = index.search(done.store.vectors(ids[:5]), k=2)
    # Its own vector (or a pair with the same conversation: the demo has several answers per prompt).
    assert np.allclose(result.similarities[:, 0], 1.0, atol=1e-5)
    for own, row in zip(ids[:5], result.ids, strict=True):
        assert own in row.tolist() or len({pair_embedding_text(Pair.objects.get(pk=i)) for i in (own, row[0])}) == 1
    assert pool_index_build(store=done.store, pair_ids=[], dim=384).ntotal == 0
    with pytest.raises(KeyError, match="no stored embedding"):
        pool_index_build(
            store=embedding_store_get(project_id=loaded_project.pk, encoder_key="other"), pair_ids=ids, dim=384
        )


def test_task_is_routed_to_the_gpu_queue() -> None:
    from django.conf import settings

    assert settings.CELERY_TASK_ROUTES["curation.tasks.pool_embed"] == {"queue": "gpu"}


@pytest.mark.worker
def test_worker_embeds_the_pool_on_the_gpu_queue(loaded_project: Any, celery_worker: Any) -> None:
    from curation.tasks import pool_embed_task
    from rewardmodel.services import text_embedder_get

    n = len(_ids(loaded_project))
    store = embedding_store_get(project_id=loaded_project.pk, encoder_key=text_embedder_get().key)
    pool_embed_task.delay(project_id=loaded_project.pk, batch_size=8)
    wait_for(lambda: len(type(store)(store.root)) == n, timeout=180)
    # A missing project ends the task with a log line, not an error loop.
    assert pool_embed_task.apply(kwargs={"project_id": 10**9}).successful()
