"""Scoring service: reward scores of many (conversation, response A, response B) triples.

The one way other apps score pairs without importing ``rewardmodel.ml`` (torch loads inside the
function, so the web process never imports it). A loaded model is kept per process and path, so a
worker that scores shard after shard loads the weights once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

_lock = threading.Lock()
_scorers: dict[tuple[str, int], Any] = {}


def _scorer(model_path: str, batch_size: int) -> Any:
    from rewardmodel.ml.infer import Scorer

    key = (model_path, batch_size)
    with _lock:
        if key not in _scorers:
            if len(_scorers) >= 2:  # gold and best: keep at most two models resident
                _scorers.pop(next(iter(_scorers)))
            _scorers[key] = Scorer.from_pretrained(model_path, batch_size=batch_size)
        return _scorers[key]


def pairs_score(
    *, model_path: str, items: Sequence[tuple[Any, str, str]], batch_size: int = 64
) -> list[tuple[float, float]]:
    """``(r_a, r_b)`` for each ``(prompt, response_a, response_b)``, in input order.

    ``prompt`` is an hh transcript or a list of ``{role, content}`` messages. Batched and sorted by
    length inside (rewardmodel.ml.infer); bf16 autocast on CUDA. Raises ValueError for a bad item.
    """
    if not items:
        return []
    records = [{"prompt": prompt, "chosen": a, "rejected": b} for prompt, a, b in items]
    scores = _scorer(model_path, batch_size).score_pairs(records)
    return [(float(a), float(b)) for a, b in zip(scores["r_chosen"], scores["r_rejected"], strict=True)]
