"""Training presets offered before raw hyperparameters, and where a job runs, in words.

A preset is a partial ``RewardTrainingConfig``. ``cpu_quick`` is sized for the packaged MiniLM on
a laptop CPU (a few minutes); ``gpu_standard`` follows Skywork-Reward-V2's recipe where one GPU can
(lr 3e-6 constant, one epoch, bf16), with gradient accumulation instead of a 10k global batch.
"""

from __future__ import annotations

from typing import Any

CUSTOM = "custom"
ATTENTION_CHOICES = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
"""Attention implementations a job may ask for: ``rewardmodel.ml.config.PADDING_FREE_ATTENTION`` (the web process
does not import ``rewardmodel.ml`` at module level; tests/rewardmodel/test_api.py checks the two are the same)."""

PRESETS: dict[str, dict[str, Any]] = {
    "cpu_quick": {
        "learning_rate": 2e-5,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "num_epochs": 1,
        "max_steps": 60,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
        "max_length": 256,
        "eval_every": 20,
        "save_every": 20,
        "bf16": False,
        "gradient_checkpointing": False,
    },
    "gpu_standard": {
        "learning_rate": 3e-6,
        "lr_scheduler": "constant",
        "warmup_ratio": 0.0,
        "num_epochs": 1,
        "max_steps": 0,
        "batch_size": 16,
        "gradient_accumulation_steps": 4,
        "max_length": 2048,
        "eval_every": 100,
        "save_every": 200,
        "bf16": True,
        "gradient_checkpointing": True,
    },
}
PRESET_LABELS: dict[str, str] = {
    "cpu_quick": "CPU quick: 60 steps, max length 256, fp32 (minutes on a laptop with the packaged MiniLM)",
    "gpu_standard": "GPU standard: the paper's lr 3e-6, one epoch, max length 2048, bf16, 64 pairs per step",
    CUSTOM: "Custom: the raw hyperparameters below",
}


def preset_config(name: str) -> dict[str, Any]:
    """A copy of preset ``name``'s settings (KeyError for an unknown name or ``custom``)."""
    return dict(PRESETS[name])


def uses_cuda(device: str) -> bool:
    return device.startswith("cuda")


def effective_bf16(config: dict[str, Any], device: str) -> bool | None:
    """bf16 as the job applies it: only on CUDA. None while the device is not known yet (queued)."""
    if not device:
        return None
    return bool(config.get("bf16")) and uses_cuda(device)


def where_it_runs(last_device: str | None) -> str:
    """The flash's words for where a queued training job runs (never "GPU" for a CPU worker)."""
    if last_device is None:
        return (
            "on the training worker (Celery queue gpu): it trains on CUDA when that worker has a GPU, "
            "else on its CPU; the job page shows the device once it starts"
        )
    kind = "GPU" if uses_cuda(last_device) else "CPU"
    return f"on the training worker (Celery queue gpu), which last trained on {kind} ({last_device})"
