"""Training loop: logging, parameter updates, schedules, best checkpoint, cancel and resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from rewardmodel.ml.callbacks import TrainerCallback, TrainingCancelled
from rewardmodel.ml.config import RewardTrainingConfig
from rewardmodel.ml.train import lr_lambda_for, main, train


class Recorder(TrainerCallback):
    """Keeps every event; optionally cancels (returns False) or crashes (raises) at a given step."""

    def __init__(self, cancel_at: int | None = None, crash_at: int | None = None) -> None:
        self.logs: list[tuple[int, int, dict[str, float]]] = []
        self.evals: list[tuple[int, dict[str, Any]]] = []
        self.saves: list[tuple[int, str]] = []
        self.cancel_at, self.crash_at = cancel_at, crash_at

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        self.logs.append((step, total_steps, metrics))
        if step == self.crash_at:
            raise RuntimeError("worker died")
        return False if step == self.cancel_at else None

    def on_eval(self, step: int, metrics: dict[str, Any]) -> bool | None:
        self.evals.append((step, metrics))
        return None

    def on_save(self, step: int, path: str, kind: str) -> None:
        self.saves.append((step, kind))


def _config(model: Path, out: Path, **kw: Any) -> RewardTrainingConfig:
    base: dict[str, Any] = {
        "model_name_or_path": str(model),
        "output_dir": str(out),
        "batch_size": 4,
        "max_length": 48,
        "learning_rate": 1e-3,
        "max_steps": 6,
    }
    base.update(kw)
    return RewardTrainingConfig(**base)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_train_logs_loss_and_changes_parameters(tiny_bert: Path, records: list[dict], tmp_path: Path) -> None:
    rec = Recorder()
    result = train(_config(tiny_bert, tmp_path, gradient_accumulation_steps=2), records, callbacks=[rec])
    assert [s for s, _, _ in rec.logs] == [1, 2, 3, 4, 5, 6]
    assert all(total == 6 for _, total, _ in rec.logs)
    first = rec.logs[0][2]
    for key in ("loss", "accuracy", "mean_margin", "lr", "grad_norm", "epoch", "num_tokens", "tokens_per_second"):
        assert key in first
    assert 0.0 < first["loss"] < 5.0 and first["num_tokens"] > 0
    before, after = _weights(tiny_bert), _weights(Path(result.final_dir))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "classifier.weight" in changed and any(k.startswith("bert.encoder") for k in changed)
    assert result.global_step == 6 and result.best_dir is None
    assert json.dumps(result.to_dict())
    assert (Path(result.final_dir) / "tokenizer.json").exists()
    assert json.loads((Path(result.final_dir) / "training_config.json").read_text())["max_steps"] == 6


def test_logged_loss_matches_bt_loss_of_the_first_batch(tiny_bert: Path, records: list[dict], tmp_path: Path) -> None:
    """Step 1's logged loss is -logsigmoid(r_c - r_r).mean() of the initial model on that step's pairs."""
    from rewardmodel.ml.data import LengthGroupedBatchSampler, PreferenceCollator, tokenize_records
    from rewardmodel.ml.loss import bt_loss
    from rewardmodel.ml.modeling import compute_rewards, load_reward_model

    rec = Recorder()
    cfg = _config(tiny_bert, tmp_path, max_steps=1, learning_rate=1e-9)
    train(cfg, records, callbacks=[rec])
    model, tok = load_reward_model(tiny_bert, device="cpu")
    torch.manual_seed(cfg.seed)  # dropout draws as in the trainer's first step
    pairs = tokenize_records(records, tok, cfg.max_length)
    first = LengthGroupedBatchSampler(pairs.lengths(), cfg.batch_size, cfg.seed).batches(0)[0]
    batch = PreferenceCollator(tok.pad_token_id)([pairs.feature(i) for i in first])
    model.eval()  # compare without dropout: loosen to a tolerance covering dropout noise
    r = compute_rewards(model, batch["input_ids"], batch["attention_mask"])
    expected = bt_loss(r[:4], r[4:]).item()
    assert rec.logs[0][2]["loss"] == pytest.approx(expected, abs=0.15)
    assert rec.logs[0][2]["accuracy"] in {0.0, 0.25, 0.5, 0.75, 1.0}


def test_decoder_trains_with_chat_template(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    rec = Recorder()
    result = train(_config(tiny_qwen, tmp_path, max_steps=3, max_length=64), records[:24], callbacks=[rec])
    assert len(rec.logs) == 3 and result.global_step == 3
    before, after = _weights(tiny_qwen), _weights(Path(result.final_dir))
    assert not torch.equal(before["score.weight"], after["score.weight"])
    saved = json.loads((Path(result.final_dir) / "config.json").read_text())
    assert saved["pad_token_id"] is not None  # pad = eos recorded so scoring pools at the last real token


def test_eval_keeps_best_checkpoint(tiny_bert: Path, records: list[dict], tmp_path: Path) -> None:
    rec = Recorder()
    result = train(_config(tiny_bert, tmp_path, max_steps=4, eval_every=2), records[:40], records[40:], callbacks=[rec])
    assert [s for s, _ in rec.evals] == [2, 4]
    accs = [m["accuracy"] for _, m in rec.evals]
    assert result.best_eval_accuracy == max(accs)
    assert result.best_step == [2, 4][accs.index(max(accs))]
    best = json.loads((tmp_path / "best" / "eval_metrics.json").read_text())
    assert best["step"] == result.best_step and set(best["per_subset"]) == {"alpha", "beta"}
    assert (tmp_path / "best" / "model.safetensors").exists()
    assert (2, "best") in rec.saves


def test_linear_schedule_with_warmup() -> None:
    cfg = RewardTrainingConfig(lr_scheduler="linear", warmup_steps=2)
    fn = lr_lambda_for(cfg, total_steps=6)
    assert [round(fn(s), 4) for s in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    const = lr_lambda_for(RewardTrainingConfig(warmup_ratio=0.5), total_steps=4)
    assert [const(s) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]


def test_the_optimizer_is_the_multi_tensor_adamw_on_cpu_without_decay_on_norms_and_biases(tiny_qwen: Path) -> None:
    """On the CPU: AdamW's multi-tensor loop (the fused kernel is the GPU's, tested in test_gpu.py); no weight decay
    on normalisation weights."""
    from rewardmodel.ml.modeling import load_reward_model
    from rewardmodel.ml.train import _make_optimizer

    model, _ = load_reward_model(tiny_qwen)
    opt = _make_optimizer(model, RewardTrainingConfig(weight_decay=0.1))
    assert not opt.defaults["fused"]
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    norms = {id(p) for n, p in model.named_parameters() if "norm" in n}
    assert norms and norms <= {id(p) for p in no_decay["params"]}
    assert not norms & {id(p) for p in decay["params"]}


def test_resume_after_crash_continues_the_step_count_and_matches_uninterrupted(
    tiny_bert: Path, records: list[dict], tmp_path: Path
) -> None:
    kw = {"max_steps": 6, "save_every": 2, "gradient_accumulation_steps": 2}
    straight = train(_config(tiny_bert, tmp_path / "straight", **kw), records)

    crashing = Recorder(crash_at=3)
    with pytest.raises(RuntimeError, match="worker died"):
        train(_config(tiny_bert, tmp_path / "crashy", **kw), records, callbacks=[crashing])
    assert [s for s, _, _ in crashing.logs] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "crashy" / "checkpoints").iterdir()) == ["step-00000002"]

    resumed_cb = Recorder()
    resumed = train(_config(tiny_bert, tmp_path / "crashy", **kw), records, callbacks=[resumed_cb])
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("step-00000002")
    assert [s for s, _, _ in resumed_cb.logs] == [3, 4, 5, 6]
    assert resumed_cb.logs[0][2]["lr"] == pytest.approx(1e-3)
    a, b = _weights(Path(straight.final_dir)), _weights(Path(resumed.final_dir))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_cancel_saves_a_checkpoint_and_a_later_call_finishes(
    tiny_bert: Path, records: list[dict], tmp_path: Path
) -> None:
    cfg = _config(tiny_bert, tmp_path, max_steps=4)
    with pytest.raises(TrainingCancelled) as info:
        train(cfg, records, callbacks=[Recorder(cancel_at=2)])
    assert info.value.step == 2 and info.value.checkpoint is not None
    assert Path(info.value.checkpoint, "optimizer.pt").exists()
    rec = Recorder()
    result = train(cfg, records, callbacks=[rec])
    assert [s for s, _, _ in rec.logs] == [3, 4] and result.global_step == 4


def test_cli_trains_from_json_config_and_jsonl(
    tiny_bert: Path, records: list[dict], tmp_path: Path, capsys: Any
) -> None:
    train_file, eval_file = tmp_path / "train.jsonl", tmp_path / "gold.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records[:24]))
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in records[24:32]))
    cfg = tmp_path / "cfg.json"
    _config(tiny_bert, tmp_path / "out", max_steps=2).to_json(cfg)
    result = main(["--config", str(cfg), "--train", str(train_file), "--eval", str(eval_file)])
    assert result.global_step == 2 and result.best_dir is not None
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert events.count("log") == 2 and "eval" in events and events[-1] == "done"


def test_empty_training_data_is_an_error(tiny_bert: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training records"):
        train(_config(tiny_bert, tmp_path), [])
