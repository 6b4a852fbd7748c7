"""Scoring service: reward scores of many (conversation, response A, response B) triples.

The one way other apps score pairs without importing ``rewardmodel.ml`` (torch loads inside the
function, so the web process never imports it). A loaded model is kept per process and path, so a
worker that scores shard after shard loads the weights once.

A model version with a scoring server attached (:class:`rewardmodel.models.ScoringServer`, vLLM or
SGLang ``/classify``, one per GPU) is scored there instead: the worker loads only the version's
tokenizer, formats each (conversation, response) exactly as the in-process scorer would (same chat
template, same truncation: :class:`rewardmodel.ml.infer.ServerTextFormatter`) and sends the texts
through :mod:`rewardmodel.remote`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from django.conf import settings

_lock = threading.Lock()
_scorers: dict[tuple[str, int, int | None], Any] = {}
_formatters: dict[tuple[str, bool, int | None], Any] = {}


def torch_threads() -> int:
    """Torch threads for a scoring process: ``RM_TORCH_THREADS``, or when 0 the host's cores divided by the
    Celery worker's processes (``SYNPREF_WORKER_CONCURRENCY``, exported by config.celery), at least 1."""
    n = int(getattr(settings, "RM_TORCH_THREADS", 0))
    if n > 0:
        return n
    value = os.environ.get("SYNPREF_WORKER_CONCURRENCY", "")
    processes = int(value) if value.isdigit() and int(value) > 0 else 1
    return max(1, (os.cpu_count() or 1) // processes)


def _scorer(model_path: str, batch_size: int, max_length: int | None = None) -> Any:
    from rewardmodel.ml.infer import Scorer

    key = (model_path, batch_size, max_length)
    with _lock:
        if key not in _scorers:
            if len(_scorers) >= 2:  # gold and best: keep at most two models resident
                _scorers.pop(next(iter(_scorers)))
            extra: dict[str, Any] = {} if max_length is None else {"max_length": max_length}
            _scorers[key] = Scorer.from_pretrained(
                model_path, batch_size=batch_size, num_threads=torch_threads(), **extra
            )
        return _scorers[key]


def _formatter(model_path: str, server_adds_special_tokens: bool, max_length: int | None = None) -> Any:
    from rewardmodel.ml.infer import ServerTextFormatter

    key = (model_path, server_adds_special_tokens, max_length)
    with _lock:
        if key not in _formatters:
            if len(_formatters) >= 4:
                _formatters.pop(next(iter(_formatters)))
            extra: dict[str, Any] = {} if max_length is None else {"max_length": max_length}
            _formatters[key] = ServerTextFormatter.from_pretrained(
                model_path, server_adds_special_tokens=server_adds_special_tokens, **extra
            )
        return _formatters[key]


def pairs_score(
    *,
    model_path: str,
    items: Sequence[tuple[Any, str, str]],
    batch_size: int = 64,
    max_length: int | None = None,
    model_version_id: int | None = None,
) -> list[tuple[float, float]]:
    """``(r_a, r_b)`` for each ``(prompt, response_a, response_b)``, in input order.

    ``prompt`` is an hh transcript or a list of ``{role, content}`` messages. In-process: batched and
    sorted by length (rewardmodel.ml.infer); bf16 autocast on CUDA. When the model version (by
    ``model_version_id``, else the version whose checkpoint is ``model_path``) has a scoring server,
    the server scores instead, with its own batch size; its errors raise
    :class:`rewardmodel.remote.RemoteScoringError` (nothing is returned for part of the items).
    ``max_length``: tokens per (conversation, response), clamped to the model's position limit (None:
    the scorer's default, 1,024). Raises ValueError for a bad item.
    """
    if not items:
        return []
    from rewardmodel.servers import scoring_server_config, scoring_server_for

    server = scoring_server_for(model_path=model_path, model_version_id=model_version_id)
    if server is not None:
        return _pairs_score_remote(scoring_server_config(server), model_path, items, max_length)
    records = [{"prompt": prompt, "chosen": a, "rejected": b} for prompt, a, b in items]
    scores = _scorer(model_path, batch_size, max_length).score_pairs(records)
    return [(float(a), float(b)) for a, b in zip(scores["r_chosen"], scores["r_rejected"], strict=True)]


def _pairs_score_remote(
    config: Any, model_path: str, items: Sequence[tuple[Any, str, str]], max_length: int | None = None
) -> list[tuple[float, float]]:
    from rewardmodel.remote import RemoteScorer

    prompts = [prompt for prompt, _, _ in items]
    texts = _formatter(model_path, config.server_adds_special_tokens, max_length).texts(
        prompts + prompts, [a for _, a, _ in items] + [b for _, _, b in items]
    )
    rewards = RemoteScorer(config).score(texts)
    n = len(items)
    return list(zip(rewards[:n], rewards[n:], strict=True))


class RemotePairScorer:
    """The rounds' scorer interface (``rewardmodel.services.PairScorer``) on a scoring server: ``score_pairs``
    returns ``{"r_chosen", "r_rejected", "p"}`` arrays in input order, as the in-process ``Scorer`` does."""

    def __init__(self, config: Any, model_path: str) -> None:
        self.config = config
        self.model_path = model_path

    def score_pairs(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import numpy as np

        items = [(r["prompt"], r["chosen"], r["rejected"]) for r in records]
        scored = _pairs_score_remote(self.config, self.model_path, items) if items else []
        r_chosen = np.array([a for a, _ in scored], dtype=np.float64)
        r_rejected = np.array([b for _, b in scored], dtype=np.float64)
        p = 0.5 * (1.0 + np.tanh(0.5 * (r_chosen - r_rejected)))  # sigmoid, stable for large margins
        return {"r_chosen": r_chosen, "r_rejected": r_rejected, "p": p}


def remote_pair_scorer(*, model_path: str) -> RemotePairScorer | None:
    """A :class:`RemotePairScorer` when the model version at ``model_path`` has a scoring server, else None."""
    from rewardmodel.servers import scoring_server_config, scoring_server_for

    server = scoring_server_for(model_path=model_path)
    return RemotePairScorer(scoring_server_config(server), model_path) if server is not None else None
