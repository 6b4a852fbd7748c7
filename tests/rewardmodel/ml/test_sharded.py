"""Sharded training (FSDP2) on CPU: the same loss curve as one process, exact resume from sharded checkpoints,
consolidation to a ``from_pretrained`` directory, and the process-group launcher (2 Gloo processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from rewardmodel.ml.callbacks import TrainerCallback, TrainingCancelled
from rewardmodel.ml.config import ConfigError, RewardTrainingConfig
from rewardmodel.ml.launch import ResourceError, check_resources, launch
from rewardmodel.ml.sharded import SHARDED_DIR, consolidate_checkpoint, is_sharded_checkpoint
from rewardmodel.ml.train import train

ROOT = Path(__file__).resolve().parents[3]


class Losses(TrainerCallback):
    """Logged losses by step; cancels at ``cancel_at``."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.losses: dict[int, float] = {}
        self.cancel_at = cancel_at

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool | None:
        self.losses[step] = metrics["loss"]
        return False if step == self.cancel_at else None


def _config(model: Path, out: Path, **kw: Any) -> RewardTrainingConfig:
    base: dict[str, Any] = {
        "model_name_or_path": str(model),
        "output_dir": str(out),
        "batch_size": 4,
        "max_length": 48,
        "learning_rate": 1e-3,
        "max_steps": 4,
        "parallelism": "fsdp",
    }
    base.update(kw)
    return RewardTrainingConfig(**base)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_config_rejects_an_unknown_parallelism() -> None:
    with pytest.raises(ConfigError, match="parallelism: must be one of"):
        RewardTrainingConfig(parallelism="zero3")


def test_one_process_fsdp_matches_ddp_and_writes_sharded_checkpoints(
    tiny_qwen: Path, records: list[dict], tmp_path: Path
) -> None:
    """In one process FSDP runs on a 1-rank group: same losses and final weights as the plain loop."""
    plain, fsdp = Losses(), Losses()
    train(_config(tiny_qwen, tmp_path / "ddp", parallelism="ddp"), records[:48], callbacks=[plain])
    result = train(_config(tiny_qwen, tmp_path / "fsdp", save_every=2), records[:48], records[48:], callbacks=[fsdp])
    assert plain.losses == fsdp.losses and len(fsdp.losses) == 4
    _assert_same_weights(_weights(tmp_path / "ddp" / "final"), _weights(Path(result.final_dir)))
    step2 = tmp_path / "fsdp" / "checkpoints" / "step-00000002"
    assert is_sharded_checkpoint(step2) and not (step2 / "model.safetensors").exists()
    assert (step2 / "config.json").exists() and (step2 / "tokenizer.json").exists()
    assert result.best_dir is not None and (Path(result.best_dir) / "model.safetensors").exists()
    assert not torch.distributed.is_initialized()  # the 1-rank group train() made is gone


def test_one_process_fsdp_resume_after_cancel_is_exact(tiny_qwen: Path, records: list[dict], tmp_path: Path) -> None:
    whole = Losses()
    train(_config(tiny_qwen, tmp_path / "whole"), records[:48], callbacks=[whole])
    first = Losses(cancel_at=2)
    with pytest.raises(TrainingCancelled) as info:
        train(_config(tiny_qwen, tmp_path / "split"), records[:48], callbacks=[first])
    assert info.value.step == 2 and is_sharded_checkpoint(Path(info.value.checkpoint or ""))
    second = Losses()
    result = train(_config(tiny_qwen, tmp_path / "split"), records[:48], callbacks=[second])
    assert result.resumed_from and result.resumed_from.endswith("step-00000002")
    assert {**first.losses, **second.losses} == whole.losses and sorted(second.losses) == [3, 4]
    _assert_same_weights(_weights(tmp_path / "whole" / "final"), _weights(Path(result.final_dir)))


def test_resuming_a_sharded_checkpoint_with_ddp_is_refused(
    tiny_qwen: Path, records: list[dict], tmp_path: Path
) -> None:
    train(_config(tiny_qwen, tmp_path, max_steps=1), records[:48])
    with pytest.raises(ValueError, match=r"is sharded \(FSDP\); resume it with parallelism=fsdp"):
        train(_config(tiny_qwen, tmp_path, max_steps=2, parallelism="ddp"), records[:48])


def test_sharded_checkpoint_consolidates_and_loads_with_from_pretrained(
    tiny_qwen: Path, records: list[dict], tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    result = train(_config(tiny_qwen, tmp_path / "run", max_steps=2), records[:48])
    step = tmp_path / "run" / "checkpoints" / "step-00000002"
    out = consolidate_checkpoint(step, tmp_path / "consolidated")
    _assert_same_weights(_weights(Path(result.final_dir)), _weights(out))
    model = AutoModelForSequenceClassification.from_pretrained(out, local_files_only=True)
    assert model.config.num_labels == 1 and (out / "tokenizer.json").exists()
    with pytest.raises(ValueError, match="is not a sharded checkpoint"):
        consolidate_checkpoint(Path(result.final_dir), tmp_path / "nope")


def _torchrun(cfg: Path, train_file: Path, gold_file: Path, events: Path, nproc: int = 2) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--standalone"]
    cmd += ["-m", "rewardmodel.ml.train", "--config", str(cfg), "--train", str(train_file), "--eval", str(gold_file)]
    cmd += ["--events-file", str(events)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in events.read_text().splitlines()]


@pytest.mark.slow
def test_two_gloo_processes_give_the_one_process_loss_curve_and_resume_exactly(
    tiny_qwen: Path, records: list[dict], tmp_path: Path
) -> None:
    """2 ranks x 1 micro-batch per step see the same pairs as 1 rank x 2 accumulated micro-batches."""
    train_file, gold_file = tmp_path / "train.jsonl", tmp_path / "gold.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records[:48]))
    gold_file.write_text("".join(json.dumps(r) + "\n" for r in records[48:]))
    reference = Losses()
    train(
        _config(tiny_qwen, tmp_path / "one", parallelism="ddp", gradient_accumulation_steps=2, max_steps=4),
        records[:48],
        callbacks=[reference],
    )

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(_config(tiny_qwen, tmp_path / "two", max_steps=2, save_every=1).to_dict()))
    events = _torchrun(cfg, train_file, gold_file, tmp_path / "events-a.jsonl")
    cfg.write_text(json.dumps(_config(tiny_qwen, tmp_path / "two", max_steps=4, save_every=1).to_dict()))
    events += _torchrun(cfg, train_file, gold_file, tmp_path / "events-b.jsonl")  # resumes at step 3

    logs = [e for e in events if e["event"] == "log"]
    assert [e["step"] for e in logs] == [1, 2, 3, 4]  # once per step (rank 0), resumed after 2
    curve = {e["step"]: e["loss"] for e in logs}
    for step, loss in reference.losses.items():
        assert curve[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    checkpoint = tmp_path / "two" / "checkpoints" / "step-00000004"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and is_sharded_checkpoint(checkpoint)
    assert len(list((checkpoint / SHARDED_DIR).glob("*.distcp"))) == 2  # one shard file per rank
    done = [e for e in events if e["event"] == "done"]
    assert done[-1]["result"]["resumed_from"].endswith("step-00000002")
    final = _weights(Path(done[-1]["result"]["final_dir"]))
    for key, value in _weights(tmp_path / "one" / "final").items():
        torch.testing.assert_close(final[key], value, rtol=1e-4, atol=1e-5)
    # The 2-rank sharded checkpoint also consolidates in one process, to the final weights.
    _assert_same_weights(final, _weights(consolidate_checkpoint(checkpoint, tmp_path / "consolidated")))


def test_check_resources_names_what_is_missing() -> None:
    with pytest.raises(ResourceError, match=r"asks for 4 GPUs; this worker has 1"):
        check_resources(4, "gpu", gpus=1)
    with pytest.raises(ResourceError, match=r"asks for 8 CPU processes; this worker has 2 CPU cores"):
        check_resources(8, "cpu", cpus=2)
    with pytest.raises(ResourceError, match="accelerator must be one of"):
        check_resources(1, "tpu")
    check_resources(2, "gpu", gpus=2)
    check_resources(2, "cpu", cpus=2)


def group_gone(pgid: int) -> bool:
    """True when no process of the launched group (torchrun and its ranks) is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_launcher_streams_events_cancels_through_the_file_and_leaves_no_rank(
    tiny_qwen: Path, records: list[dict], tmp_path: Path
) -> None:
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records[:48]))
    config = _config(tiny_qwen, tmp_path / "out", max_steps=40, train_file=str(train_file))
    seen: list[dict] = []

    def on_event(event: dict) -> bool | None:
        seen.append(event)
        return False if event["event"] == "log" and event["step"] == 2 else None  # ask for a cancel

    outcome = launch(config, nproc=2, accelerator="cpu", run_dir=tmp_path / "launch", on_event=on_event, poll_s=0.1)
    assert outcome.status == "cancelled", outcome.log_tail
    assert outcome.returncode == 0 and outcome.step is not None and 2 <= outcome.step < 40
    assert [e["step"] for e in seen if e["event"] == "log"][:2] == [1, 2]
    assert any(e["event"] == "save" and e["kind"] == "checkpoint" for e in seen)
    assert group_gone(outcome.pids[0])
    assert is_sharded_checkpoint(tmp_path / "out" / "checkpoints" / f"step-{outcome.step:08d}")
