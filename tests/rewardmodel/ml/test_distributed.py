"""Multi-process training through torchrun (2 CPU processes, Gloo): the same CLI the GPU cluster uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_torchrun_two_processes_train_evaluate_save_and_resume(
    tiny_bert: Path, records: list[dict], tmp_path: Path
) -> None:
    train_file, gold_file, cfg = tmp_path / "train.jsonl", tmp_path / "gold.jsonl", tmp_path / "cfg.json"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in records[:48]))
    gold_file.write_text("".join(json.dumps(r) + "\n" for r in records[48:]))
    config = {
        "model_name_or_path": str(tiny_bert),
        "batch_size": 4,
        "max_length": 48,
        "learning_rate": 1e-3,
        "max_steps": 2,
        "eval_every": 0,
        "save_every": 1,
        "output_dir": str(tmp_path / "out"),
    }

    def run(max_steps: int) -> list[dict]:
        cfg.write_text(json.dumps({**config, "max_steps": max_steps}))
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--standalone",
            "-m",
            "rewardmodel.ml.train",
            "--config",
            str(cfg),
            "--train",
            str(train_file),
            "--eval",
            str(gold_file),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]

    events = run(2)
    logs = [e for e in events if e["event"] == "log"]
    assert [e["step"] for e in logs] == [1, 2]  # printed once (rank 0), not once per process
    assert logs[0]["num_tokens"] > 0 and events[-1]["event"] == "done"
    state = json.loads((tmp_path / "out" / "checkpoints" / "step-00000002" / "trainer_state.json").read_text())
    assert state["world_size"] == 2
    assert {p.name for p in (tmp_path / "out" / "checkpoints" / "step-00000002").glob("rng_state_*.pt")} == {
        "rng_state_0.pt",
        "rng_state_1.pt",
    }

    events = run(3)  # resume: continues at step 3
    assert [e["step"] for e in events if e["event"] == "log"] == [3]
    assert (tmp_path / "out" / "best" / "eval_metrics.json").exists()
