"""All hyperparameters of a Bradley-Terry reward-model training run, in one JSON-serialisable dataclass.

The Django app stores ``RewardTrainingConfig.to_dict()`` as JSON on a TrainingJob and rebuilds it with
``RewardTrainingConfig.from_dict``; the CLI (``python -m rewardmodel.ml.train --config cfg.json``) reads the same
JSON. Unknown keys, wrong types and out-of-range values raise :class:`ConfigError`, whose ``field`` attribute and
message name the offending field, so a form can attach the error to the right input.

Batch-size semantics (as TRL / HF Trainer): ``batch_size`` is the number of *pairs* per device per micro-batch; one
optimizer step sees ``batch_size * gradient_accumulation_steps * world_size`` pairs (the "global batch"). Each
micro-batch runs ``2 * batch_size`` sequences through the model (chosen then rejected).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEDULES = ("constant", "linear")
MODEL_DTYPES = ("float32", "bfloat16")
PARALLELISMS = ("ddp", "fsdp")
PADDING_FREE_ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
"""Attention implementations whose transformers masking takes packed rows (sequences told apart by position_ids
restarting at 0): flash-attention runs them as varlen, flex as a block-sparse mask, sdpa / eager with a dense
block-diagonal mask."""


class ConfigError(ValueError):
    """A configuration value is invalid. ``field`` is the name of the offending field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class RewardTrainingConfig:
    """Hyperparameters of one reward-model training run (defaults suit the packaged CPU MiniLM backbone).

    See :meth:`paper_recipe` for the Skywork-Reward-V2 values. Every field is a JSON scalar (or None), so
    ``from_dict(to_dict(c)) == c`` holds.
    """

    # --- model and data -------------------------------------------------------------------------
    model_name_or_path: str | None = None
    """HF checkpoint directory (any ``AutoModelForSequenceClassification``); None = packaged MiniLM."""
    output_dir: str = "rm_output"
    """Checkpoints go to ``output_dir/checkpoints/step-XXXXXXXX``, the best one to ``output_dir/best``, the final
    model to ``output_dir/final``."""
    train_file: str | None = None
    """JSONL of training pairs (used by the CLI when no records are passed to ``train``)."""
    eval_file: str | None = None
    """JSONL of evaluation pairs (D_gold), used for periodic evaluation and best-checkpoint selection."""
    max_length: int = 512
    """Maximum tokens per (conversation + response) sequence; clamped to the model's position limit. The
    conversation is left-truncated, the response kept (see ``data.encode_conversation``)."""
    use_margin: bool = False
    """Subtract a per-pair ``margin`` field of the records inside the sigmoid (Llama-2 style); off in the paper."""

    # --- optimisation ---------------------------------------------------------------------------
    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    """Gradient-norm clipping; 0 disables it."""
    lr_scheduler: str = "constant"
    """``constant`` or ``linear`` (decay to 0 at the last step), both after the warm-up."""
    warmup_ratio: float = 0.0
    """Warm-up as a fraction of the total optimizer steps (ignored when ``warmup_steps`` > 0)."""
    warmup_steps: int = 0
    num_epochs: int = 1
    max_steps: int = 0
    """> 0: stop after this many optimizer steps (overrides ``num_epochs``; the data is cycled if needed)."""
    batch_size: int = 8
    """Pairs per device per micro-batch."""
    gradient_accumulation_steps: int = 1
    eval_batch_size: int = 32
    """Sequences per scoring batch during evaluation."""
    group_by_length: bool = True
    """Length-grouped micro-batches (less padding); the order stays seeded and reproducible."""
    pad_to_multiple_of: int = 0
    """Pad batch lengths up to a multiple of this (e.g. 8 for tensor cores); 0 = no rounding."""

    # --- precision and memory -------------------------------------------------------------------
    bf16: bool = True
    """bf16 autocast for forward passes; applied on CUDA only (ignored on CPU)."""
    model_dtype: str = "float32"
    """Parameter dtype: ``float32`` (mixed precision with autocast) or ``bfloat16`` (pure bf16, half the memory)."""
    gradient_checkpointing: bool = False
    attn_implementation: str | None = None
    """Passed to ``from_pretrained`` (``sdpa``, ``eager``, ``flash_attention_2``); None = the transformers default."""
    padding_free: bool = False
    """Pack each micro-batch's 2B sequences (chosen then rejected) into one row with no padding: position ids
    restart at 0 per sequence, attention stays within a sequence, and each reward is read at its sequence's last
    token, so no padding token is computed. Decoder models (Qwen3, Llama, ...) only; on GPU use
    ``attn_implementation="flash_attention_2"`` (varlen kernels). See docs/training.md."""

    # --- data parallelism (see docs/training.md) --------------------------------------------------
    parallelism: str = "ddp"
    """``ddp``: every rank holds the full model, gradients and AdamW states (fits up to ~1.7B on 80 GB cards).
    ``fsdp``: PyTorch FSDP2 shards parameters, gradients and optimizer states over the ranks (ZeRO-3; 8B models);
    checkpoints are sharded (torch.distributed.checkpoint) and ``best/`` / ``final/`` are consolidated."""
    fsdp_reshard_after_forward: bool = True
    """FSDP: free gathered parameters after each block's forward (ZeRO-3). False keeps them until the backward
    (ZeRO-2-like: less communication, more memory)."""
    fsdp_cpu_offload: bool = False
    """FSDP on CUDA: keep sharded parameters, gradients and optimizer states in host memory (slow; ignored on CPU)."""

    # --- bookkeeping ----------------------------------------------------------------------------
    seed: int = 42
    logging_steps: int = 1
    """Call ``on_log`` every this many optimizer steps (and at the last step)."""
    eval_every: int = 0
    """Evaluate every this many optimizer steps; 0 = only at the end. Needs eval records."""
    save_every: int = 0
    """Save a resumable checkpoint every this many optimizer steps; 0 = only at the end."""
    save_total_limit: int = 2
    """Keep at most this many resumable checkpoints (oldest deleted); 0 = keep all."""
    resume: bool = True
    """Resume from the newest complete checkpoint in ``output_dir/checkpoints`` when there is one."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form JSON metadata (e.g. dataset version ids); not used by the trainer."""

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        """Validate every field; raise ConfigError naming the first bad one."""
        self.validate()

    @classmethod
    def paper_recipe(cls, **overrides: Any) -> RewardTrainingConfig:
        """Skywork-Reward-V2's final recipe: lr 3e-6 constant, 1 epoch, max length 16,384, bf16.

        The paper's global batch is 10,240 pairs on 64 GPUs: here ``batch_size * gradient_accumulation_steps *
        world_size`` must be chosen to match (defaults give 16 * 10 * 64). Gradient checkpointing is on.
        """
        values: dict[str, Any] = {
            "learning_rate": 3e-6,
            "lr_scheduler": "constant",
            "num_epochs": 1,
            "max_length": 16384,
            "batch_size": 16,
            "gradient_accumulation_steps": 10,
            "bf16": True,
            "gradient_checkpointing": True,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def effective_batch_size(self) -> int:
        """Pairs per optimizer step on one process (multiply by the world size for the global batch)."""
        return self.batch_size * self.gradient_accumulation_steps

    def validate(self) -> None:
        """Check types and ranges of all fields. Raises ConfigError(field, message)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), hints[f.name])
        positive = ("learning_rate", "batch_size", "gradient_accumulation_steps", "eval_batch_size", "max_length")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"must be > 0, got {getattr(self, name)!r}")
        non_negative = (
            "weight_decay",
            "adam_epsilon",
            "max_grad_norm",
            "warmup_steps",
            "max_steps",
            "pad_to_multiple_of",
            "logging_steps",
            "eval_every",
            "save_every",
            "save_total_limit",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(name, f"must be >= 0, got {getattr(self, name)!r}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(name, f"must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError("warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio!r}")
        if self.num_epochs < 1 and self.max_steps == 0:
            raise ConfigError("num_epochs", "must be >= 1 when max_steps is 0")
        if self.lr_scheduler not in SCHEDULES:
            raise ConfigError("lr_scheduler", f"must be one of {SCHEDULES}, got {self.lr_scheduler!r}")
        if self.model_dtype not in MODEL_DTYPES:
            raise ConfigError("model_dtype", f"must be one of {MODEL_DTYPES}, got {self.model_dtype!r}")
        if self.parallelism not in PARALLELISMS:
            raise ConfigError("parallelism", f"must be one of {PARALLELISMS}, got {self.parallelism!r}")
        if not self.output_dir:
            raise ConfigError("output_dir", "must not be empty")
        if self.logging_steps == 0:
            raise ConfigError("logging_steps", "must be >= 1")
        if self.padding_free:
            if self.model_name_or_path is None:
                raise ConfigError(
                    "padding_free",
                    "the packaged MiniLM backbone is a BERT encoder, which cannot take packed rows; "
                    "use a decoder checkpoint (Qwen3, Llama, ...) or set padding_free to false",
                )
            if self.attn_implementation is not None and self.attn_implementation not in PADDING_FREE_ATTENTION:
                raise ConfigError(
                    "attn_implementation",
                    f"padding_free needs one of {PADDING_FREE_ATTENTION} (or None for the default, sdpa), "
                    f"got {self.attn_implementation!r}",
                )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (``json.dumps`` works on it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardTrainingConfig:
        """Build a config from a dict (e.g. parsed JSON). Missing keys take defaults.

        Raises ConfigError naming the field for an unknown key, a wrong type or an out-of-range value.
        Ints are accepted for float fields; bools are never accepted as numbers.
        """
        if not isinstance(data, dict):
            raise ConfigError("<root>", f"expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in names:
                raise ConfigError(str(key), "unknown field")
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, value in data.items():
            _check_type(key, value, hints[key])
            if hints[key] is float or (_is_optional(hints[key]) and float in typing.get_args(hints[key])):
                value = float(value) if value is not None else None
            values[key] = value
        return cls(**values)

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to a JSON string; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> RewardTrainingConfig:
        """Parse a JSON string, or read a JSON file when given a path to an existing file."""
        if isinstance(text_or_path, Path) or not str(text_or_path).lstrip().startswith("{"):
            text = Path(text_or_path).read_text(encoding="utf-8")
        else:
            text = str(text_or_path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("<root>", f"invalid JSON: {exc}") from exc
        return cls.from_dict(data)


def _is_optional(tp: Any) -> bool:
    """True for ``X | None`` annotations."""
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _check_type(name: str, value: Any, tp: Any) -> None:
    """Raise ConfigError unless ``value`` matches annotation ``tp`` (int, float, bool, str, dict, or X | None)."""
    if _is_optional(tp):
        if value is None:
            return
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = inner[0]
    origin = typing.get_origin(tp) or tp
    ok: bool
    if origin is bool:
        ok = isinstance(value, bool)
    elif origin is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif origin is str:
        ok = isinstance(value, str)
    elif origin is dict:
        ok = isinstance(value, dict)
    else:  # pragma: no cover - every field uses one of the types above
        ok = True
    if not ok:
        expected = getattr(origin, "__name__", str(origin))
        raise ConfigError(name, f"expected {expected}, got {type(value).__name__} ({value!r})")
