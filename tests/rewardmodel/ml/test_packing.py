"""Padding-free (packed) training: a micro-batch's sequences in one row, position ids restarting per sequence.

The packed forward must give the padded forward's rewards, loss and gradients (to float32 rounding), in the
loop under DDP-style and FSDP training, and be refused for models whose attention cannot take packed rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rewardmodel.ml.callbacks import TrainerCallback
from rewardmodel.ml.config import ConfigError, RewardTrainingConfig
from rewardmodel.ml.data import PackedPreferenceCollator, PreferenceCollator, last_real_token, tokenize_records
from rewardmodel.ml.loss import bt_loss
from rewardmodel.ml.modeling import compute_rewards, compute_rewards_packed, load_reward_model, padding_free_problem
from rewardmodel.ml.train import train

PAD = 0


def _feature(chosen: list[int], rejected: list[int], margin: float = 0.0) -> dict[str, Any]:
    return {"chosen_input_ids": np.array(chosen), "rejected_input_ids": np.array(rejected), "margin": margin}


def test_collator_packs_chosen_then_rejected_without_padding() -> None:
    batch = PackedPreferenceCollator(PAD)([_feature([5, 6, 7], [8]), _feature([9, 10], [11, 12, 13, 14], 0.5)])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 9, 10, 8, 11, 12, 13, 14]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 0, 1, 2, 3]]
    assert batch["reward_index"].tolist() == [2, 4, 5, 9]  # chosen 0, chosen 1, rejected 0, rejected 1
    assert batch["cu_seq_lens"].tolist() == [0, 3, 5, 6, 10] and batch["cu_seq_lens"].dtype == torch.int32
    assert batch["max_length"] == 4 and int(batch["num_tokens"]) == 10
    assert batch["margin"].tolist() == [0.0, 0.5] and "attention_mask" not in batch


def test_collator_reads_the_reward_where_the_padded_batch_does() -> None:
    """pad = EOS (decoders shipped without a pad token): a sequence ending in EOS is read at the token before it,
    as transformers' pooling of a right-padded batch does; an empty sequence gets one pad token to read."""
    assert last_real_token([5, 6, PAD], PAD) == 1 and last_real_token([PAD, PAD], PAD) == 0
    batch = PackedPreferenceCollator(PAD)([_feature([5, 6, PAD], [])])
    assert batch["input_ids"].tolist() == [[5, 6, PAD, PAD]] and batch["position_ids"].tolist() == [[0, 1, 2, 0]]
    assert batch["reward_index"].tolist() == [1, 3]


def test_pad_to_multiple_of_adds_a_filler_segment_that_is_never_read() -> None:
    batch = PackedPreferenceCollator(PAD, pad_to_multiple_of=8)([_feature([5, 6, 7], [8, 9])])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, PAD, PAD, PAD]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]  # the filler restarts: its own segment
    assert batch["cu_seq_lens"].tolist() == [0, 3, 5, 8] and int(batch["num_tokens"]) == 5
    assert batch["reward_index"].tolist() == [2, 4]


def _loss_and_grads(model: Any, rewards: torch.Tensor, b: int) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = bt_loss(rewards[:b], rewards[b:], None)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads


@pytest.mark.parametrize(
    ("arch", "attn", "checkpointing"),
    [("tiny_qwen", "sdpa", False), ("tiny_qwen", "eager", True), ("tiny_llama", "sdpa", False)],
)
def test_packed_loss_and_gradients_equal_the_padded_ones(
    request: pytest.FixtureRequest, records: list[dict], arch: str, attn: str, checkpointing: bool
) -> None:
    model, tokenizer = load_reward_model(request.getfixturevalue(arch), device="cpu", attn_implementation=attn)
    model.train()  # the tiny configs have no dropout: train mode is deterministic
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    pairs = tokenize_records(records[:6], tokenizer, max_length=64)
    features = [pairs.feature(i) for i in range(len(pairs))]
    padded = PreferenceCollator(tokenizer.pad_token_id)(features)
    packed = PackedPreferenceCollator(tokenizer.pad_token_id)(features)
    real = int(padded["attention_mask"].sum())
    assert real == int(packed["num_tokens"]) == packed["input_ids"].shape[1] < padded["input_ids"].numel()

    r_padded = compute_rewards(model, padded["input_ids"], padded["attention_mask"])
    loss_padded, grads_padded = _loss_and_grads(model, r_padded, len(features))
    model.config.use_cache = True  # packing needs the cache off: compute_rewards_packed turns it off per call
    r_packed = compute_rewards_packed(model, packed["input_ids"], packed["position_ids"], packed["reward_index"])
    loss_packed, grads_packed = _loss_and_grads(model, r_packed, len(features))

    torch.testing.assert_close(r_packed, r_padded, rtol=1e-5, atol=1e-5)
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    assert grads_packed.keys() == grads_padded.keys() and len(grads_packed) == len(list(model.parameters()))
    for name, grad in grads_padded.items():
        torch.testing.assert_close(grads_packed[name], grad, rtol=1e-4, atol=1e-6, msg=name)


class Logs(TrainerCallback):
    def __init__(self) -> None:
        self.metrics: dict[int, dict[str, float]] = {}

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        self.metrics[step] = metrics
        return None


def _config(model: Path, out: Path, **kw: Any) -> RewardTrainingConfig:
    base: dict[str, Any] = {
        "model_name_or_path": str(model),
        "output_dir": str(out),
        "batch_size": 4,
        "max_length": 48,
        "learning_rate": 1e-3,
        "max_steps": 3,
        "gradient_accumulation_steps": 2,
        "group_by_length": False,  # more padding in the padded run, so the two layouts really differ
    }
    base.update(kw)
    return RewardTrainingConfig(**base)


def _assert_same_run(a: Logs, b: Logs, dir_a: Path, dir_b: Path) -> None:
    assert a.metrics.keys() == b.metrics.keys() == {1, 2, 3}
    for step in a.metrics:
        for key in ("loss", "accuracy", "mean_margin", "grad_norm", "num_tokens"):
            assert b.metrics[step][key] == pytest.approx(a.metrics[step][key], rel=1e-4, abs=1e-6), (step, key)
    wa, wb = load_file(str(dir_a / "model.safetensors")), load_file(str(dir_b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=1e-4, atol=1e-5, msg=key)


def test_padding_free_training_follows_the_padded_run(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    """Same losses, accuracy, margins, gradient norms, real-token counts and final weights; under FSDP too."""
    padded, packed, sharded = Logs(), Logs(), Logs()
    train(_config(tiny_qwen, tmp_path / "padded"), records[:48], callbacks=[padded])
    train(_config(tiny_qwen, tmp_path / "packed", padding_free=True), records[:48], callbacks=[packed])
    result = train(
        _config(tiny_qwen, tmp_path / "fsdp", padding_free=True, parallelism="fsdp"), records[:48], callbacks=[sharded]
    )
    _assert_same_run(padded, packed, tmp_path / "padded" / "final", tmp_path / "packed" / "final")
    _assert_same_run(padded, sharded, tmp_path / "padded" / "final", Path(result.final_dir))
    saved = json.loads((Path(result.final_dir) / "training_config.json").read_text())
    assert saved["padding_free"] is True


@pytest.mark.slow
def test_two_gloo_fsdp_processes_packed_give_the_one_process_padded_curve(
    tiny_qwen: Path, records: list[dict], tmp_path: Path
) -> None:
    """2 ranks x 1 packed micro-batch per step (FSDP2, Gloo) see the pairs of 1 rank x 2 padded micro-batches."""
    from tests.rewardmodel.ml.test_sharded import _torchrun

    reference = Logs()
    train(_config(tiny_qwen, tmp_path / "one"), records[:48], callbacks=[reference])
    train_file, gold_file = tmp_path / "train.jsonl", tmp_path / "gold.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records[:48]))
    gold_file.write_text("".join(json.dumps(r) + "\n" for r in records[48:]))
    cfg = _config(
        tiny_qwen, tmp_path / "two", padding_free=True, parallelism="fsdp", gradient_accumulation_steps=1
    ).to_dict()
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    events = _torchrun(tmp_path / "cfg.json", train_file, gold_file, tmp_path / "events.jsonl")
    curve = {e["step"]: e for e in events if e["event"] == "log"}
    assert sorted(curve) == [1, 2, 3]
    for step, metrics in reference.metrics.items():
        for key in ("loss", "accuracy", "num_tokens"):
            assert curve[step][key] == pytest.approx(metrics[key], rel=1e-4, abs=1e-6), (step, key)
    final = load_file(str(tmp_path / "two" / "final" / "model.safetensors"))
    for key, value in load_file(str(tmp_path / "one" / "final" / "model.safetensors")).items():
        torch.testing.assert_close(final[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_an_encoder_is_refused_with_a_message_naming_the_option(
    tiny_bert: Path, records: list[dict], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"padding_free: BertForSequenceClassification cannot take packed rows"):
        train(_config(tiny_bert, tmp_path, padding_free=True), records[:16])
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "final").exists()


def test_flex_attention_is_refused_on_cpu(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="padding_free: flex_attention has no backward on CPU"):
        train(_config(tiny_qwen, tmp_path, padding_free=True, attn_implementation="flex_attention"), records[:16])


def test_padding_free_problem_names_the_attention(tiny_qwen: Path) -> None:
    model, _tok = load_reward_model(tiny_qwen, device="cpu", attn_implementation="sdpa")
    assert padding_free_problem(model) is None
    model.config._attn_implementation = "paged|sdpa"
    assert "attention implementation 'paged|sdpa' cannot take packed rows" in (padding_free_problem(model) or "")


def test_config_refuses_padding_free_for_the_packaged_encoder_and_other_attention() -> None:
    with pytest.raises(ConfigError, match="padding_free: the packaged MiniLM backbone is a BERT encoder") as info:
        RewardTrainingConfig(padding_free=True)
    assert info.value.field == "padding_free"
    with pytest.raises(ConfigError, match="attn_implementation: padding_free needs one of") as info:
        RewardTrainingConfig.from_dict(
            {"model_name_or_path": "/m", "padding_free": True, "attn_implementation": "paged_attention"}
        )
    assert info.value.field == "attn_implementation"
    ok = RewardTrainingConfig(model_name_or_path="/m", padding_free=True, attn_implementation="flash_attention_2")
    assert RewardTrainingConfig.from_dict(ok.to_dict()) == ok
