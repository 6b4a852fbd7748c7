"""CUDA-only checks: bf16 autocast training and scoring on the GPU. Skipped without CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _three_bf16_steps_on_cuda(model: Path, records: list[dict], tmp_path: Path, **options: Any) -> None:
    """Train three bf16 steps with gradient checkpointing (plus ``options``); the run must finish and evaluate."""
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.train import train

    cfg = RewardTrainingConfig(
        model_name_or_path=str(model),
        output_dir=str(tmp_path),
        max_steps=3,
        batch_size=4,
        max_length=64,
        bf16=True,
        gradient_checkpointing=True,
        learning_rate=1e-3,
        **options,
    )
    result = train(cfg, records, records[:8])
    assert result.global_step == 3 and result.final_eval is not None


def test_the_optimizer_on_cuda_is_the_fused_adamw(tiny_qwen: Path) -> None:
    """As HF Trainer's default on CUDA: the fused kernel, fewer launches per step than the multi-tensor loop."""
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.modeling import load_reward_model
    from rewardmodel.ml.train import _make_optimizer

    model, _ = load_reward_model(tiny_qwen, device="cuda")
    assert _make_optimizer(model, RewardTrainingConfig()).defaults["fused"] is True


def test_training_runs_on_cuda_with_bf16(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    _three_bf16_steps_on_cuda(tiny_qwen, records, tmp_path)


def test_gpu_scores_match_cpu(tiny_qwen: Path, records: list[dict]) -> None:
    from rewardmodel.ml.infer import Scorer

    cpu = Scorer.from_pretrained(tiny_qwen, device="cpu", max_length=64).score_pairs(records[:16])
    gpu = Scorer.from_pretrained(tiny_qwen, device="cuda", max_length=64, bf16=False).score_pairs(records[:16])
    np.testing.assert_allclose(gpu["r_chosen"], cpu["r_chosen"], atol=1e-3)


@pytest.fixture(scope="module")
def wide_qwen(tmp_path_factory: pytest.TempPathFactory, records: list[dict]) -> Path:
    """A tiny Qwen3 with head dim 16 (flex attention's minimum on CUDA)."""
    from rewardmodel.ml.backbones import build_tiny_decoder
    from tests.rewardmodel.ml.conftest import corpus

    return build_tiny_decoder(tmp_path_factory.mktemp("wide-qwen"), corpus(records), hidden_size=64, num_heads=4)


@pytest.mark.parametrize("attn", ["sdpa", "flex_attention", "flash_attention_2"])
def test_packed_rewards_and_gradients_match_padded_on_cuda(wide_qwen: Path, records: list[dict], attn: str) -> None:
    """The padding-free path on the GPU kernels: flash-attention varlen (when flash-attn is installed) and flex
    attention's block mask give the padded batch's rewards and gradients (bf16 for flash, which needs it)."""
    import importlib.util

    from rewardmodel.ml.data import PackedPreferenceCollator, PreferenceCollator, tokenize_records
    from rewardmodel.ml.loss import bt_loss
    from rewardmodel.ml.modeling import compute_rewards, compute_rewards_packed, load_reward_model

    if attn == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        pytest.skip("flash-attn is not installed")
    dtype = "bfloat16" if attn.startswith("flash") else "float32"
    rtol, atol = (2e-2, 2e-2) if dtype == "bfloat16" else (1e-3, 1e-4)
    padded_model, tok = load_reward_model(wide_qwen, device="cuda", dtype=dtype, attn_implementation="sdpa")
    packed_model, _ = load_reward_model(wide_qwen, device="cuda", dtype=dtype, attn_implementation=attn)
    pairs = tokenize_records(records[:8], tok, max_length=96)
    features = [pairs.feature(i) for i in range(len(pairs))]
    b = len(features)
    p = PreferenceCollator(tok.pad_token_id)(features)
    q = PackedPreferenceCollator(tok.pad_token_id)(features)
    r_pad = compute_rewards(padded_model, p["input_ids"].cuda(), p["attention_mask"].cuda())
    bt_loss(r_pad[:b], r_pad[b:]).backward()
    cu = q["cu_seq_lens"].cuda()
    flash = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": q["max_length"], "max_length_k": q["max_length"]}
    r_pack = compute_rewards_packed(
        packed_model,
        q["input_ids"].cuda(),
        q["position_ids"].cuda(),
        q["reward_index"].cuda(),
        flash if attn.startswith("flash") else None,
    )
    bt_loss(r_pack[:b], r_pack[b:]).backward()
    torch.testing.assert_close(r_pack, r_pad, rtol=rtol, atol=atol)
    for (name, a), (_, c) in zip(padded_model.named_parameters(), packed_model.named_parameters(), strict=True):
        assert a.grad is not None and c.grad is not None, name
        torch.testing.assert_close(c.grad.float(), a.grad.float(), rtol=rtol, atol=atol, msg=name)


def test_padding_free_training_runs_on_cuda(wide_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    _three_bf16_steps_on_cuda(wide_qwen, records, tmp_path, padding_free=True, attn_implementation="flex_attention")


def test_sharded_training_launches_on_the_gpu_with_nccl(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    """The jobs page's sharded path on CUDA: ``launch`` starts a torchrun rank per GPU (NCCL, FSDP2, bf16), streams
    every step's log event, writes sharded checkpoints and consolidates the end into a ``from_pretrained`` directory
    whose rewards are finite and have moved from the initial model's."""
    import json

    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.infer import Scorer
    from rewardmodel.ml.launch import launch
    from rewardmodel.ml.sharded import is_sharded_checkpoint

    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records[:48]))
    cfg = RewardTrainingConfig(
        model_name_or_path=str(tiny_qwen),
        output_dir=str(tmp_path / "out"),
        train_file=str(train_file),
        max_steps=4,
        save_every=2,
        batch_size=4,
        max_length=64,
        bf16=True,
        learning_rate=1e-3,
        parallelism="fsdp",
    )
    seen: list[dict] = []
    outcome = launch(
        cfg, nproc=torch.cuda.device_count(), accelerator="gpu", run_dir=tmp_path / "launch", on_event=seen.append
    )
    assert outcome.status == "succeeded", outcome.log_tail
    assert [e["step"] for e in seen if e["event"] == "log"] == [1, 2, 3, 4]
    assert is_sharded_checkpoint(tmp_path / "out" / "checkpoints" / "step-00000002")
    final = tmp_path / "out" / "final"
    before = Scorer.from_pretrained(tiny_qwen, device="cuda", max_length=64, bf16=False).score_pairs(records[:8])
    after = Scorer.from_pretrained(final, device="cuda", max_length=64, bf16=False).score_pairs(records[:8])
    assert np.isfinite(after["r_chosen"]).all() and not np.allclose(after["r_chosen"], before["r_chosen"])
