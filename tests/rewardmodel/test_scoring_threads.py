"""In-process scoring sizes torch's threads per worker process: two processes on two cores use one each."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rewardmodel import scoring


def test_threads_follow_the_setting_else_the_cores_per_worker_process(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.RM_TORCH_THREADS = 3
    monkeypatch.setenv("SYNPREF_WORKER_CONCURRENCY", "2")
    assert scoring.torch_threads() == 3
    settings.RM_TORCH_THREADS = 0
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert scoring.torch_threads() == 4
    monkeypatch.setenv("SYNPREF_WORKER_CONCURRENCY", "16")
    assert scoring.torch_threads() == 1  # never 0
    for unknown in ("", "auto", "-2"):
        monkeypatch.setenv("SYNPREF_WORKER_CONCURRENCY", unknown)
        assert scoring.torch_threads() == 8
    monkeypatch.delenv("SYNPREF_WORKER_CONCURRENCY")
    assert scoring.torch_threads() == 8


def test_the_worker_tells_its_processes_their_number(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.celery import _export_concurrency

    monkeypatch.delenv("SYNPREF_WORKER_CONCURRENCY", raising=False)
    _export_concurrency(sender=SimpleNamespace(concurrency="auto"))  # resolved by Celery later: unknown here
    assert "SYNPREF_WORKER_CONCURRENCY" not in os.environ
    _export_concurrency(sender=SimpleNamespace(concurrency=2))
    assert os.environ["SYNPREF_WORKER_CONCURRENCY"] == "2"


def test_a_scorer_loaded_for_a_worker_uses_its_thread_count(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    import torch

    before = torch.get_num_threads()
    settings.RM_TORCH_THREADS = 1
    monkeypatch.setattr(scoring, "_scorers", {})
    try:
        torch.set_num_threads(2)
        scorer = scoring._scorer(str(tiny_model_dir), 8, 32)
        assert torch.get_num_threads() == 1 and scorer.max_length == 32
        assert scoring._scorer(str(tiny_model_dir), 8, 32) is scorer  # loaded once per process
        assert scoring._scorer(str(tiny_model_dir), 8, 48) is not scorer  # another max length, another scorer
    finally:
        torch.set_num_threads(before)
