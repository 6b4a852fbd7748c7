"""CUDA-only checks: bf16 autocast training and scoring on the GPU. Skipped without CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_training_runs_on_cuda_with_bf16(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.train import train

    cfg = RewardTrainingConfig(
        model_name_or_path=str(tiny_qwen),
        output_dir=str(tmp_path),
        max_steps=3,
        batch_size=4,
        max_length=64,
        bf16=True,
        gradient_checkpointing=True,
        learning_rate=1e-3,
    )
    result = train(cfg, records, records[:8])
    assert result.global_step == 3 and result.final_eval is not None


def test_gpu_scores_match_cpu(tiny_qwen: Path, records: list[dict]) -> None:
    from rewardmodel.ml.infer import Scorer

    cpu = Scorer.from_pretrained(tiny_qwen, device="cpu", max_length=64).score_pairs(records[:16])
    gpu = Scorer.from_pretrained(tiny_qwen, device="cuda", max_length=64, bf16=False).score_pairs(records[:16])
    np.testing.assert_allclose(gpu["r_chosen"], cpu["r_chosen"], atol=1e-3)
