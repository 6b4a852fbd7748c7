"""Bradley-Terry reward-model training: one loop for CPU, one GPU and torchrun multi-GPU (DDP).

Entry point for the app: :func:`train` (``config``, records or JSONL paths, callbacks) -> :class:`TrainResult`.

What one optimizer step does: for each of ``gradient_accumulation_steps`` micro-batches of ``batch_size`` pairs
(length-grouped, seeded), run chosen and rejected through the model in one (2B, L) batch, ``loss = bt_loss(r[:B],
r[B:])``, backward ``loss / n_micro``; clip the gradient norm, AdamW step, LR schedule step (warm-up then constant
or linear decay). bf16 autocast on CUDA only. Metrics (loss, accuracy, mean margin, lr, grad norm, tokens) are
summed over micro-batches and ranks and passed to the callbacks (see :mod:`rewardmodel.ml.callbacks`).

Outputs under ``config.output_dir``::

    checkpoints/step-00000200/   resumable: model (safetensors) + tokenizer + optimizer.pt + scheduler.pt +
                                 rng_state_<rank>.pt + trainer_state.json + training_config.json
    best/                        model + tokenizer with the best eval accuracy so far (+ eval_metrics.json)
    final/                       model + tokenizer at the last step (+ train_metrics.json)

A checkpoint directory is written under a temporary name and renamed when complete, so a crash never leaves a
half checkpoint under a ``step-*`` name. With ``config.resume`` (default) a new call with the same ``output_dir``
continues from the newest checkpoint: weights, optimizer, scheduler, RNG states, and the position in the seeded
batch order are restored, so the step count continues and (on CPU, same world size) the run is bit-identical to an
uninterrupted one.

Multi-GPU: ``torchrun --nproc_per_node=8 -m rewardmodel.ml.train --config cfg.json --train train.jsonl --eval
gold.jsonl``. Each rank takes every ``world_size``-th micro-batch of the shared seeded order (adjacent micro-batches
have similar lengths, so ranks stay balanced); gradients are averaged by DDP (``no_sync`` during accumulation);
rank 0 logs, evaluates (eval records are scored in shards on all ranks) and saves. The global batch is
``batch_size * gradient_accumulation_steps * world_size`` pairs. Plain DDP keeps a full optimizer state per GPU,
which suits models up to ~1.7B on 80 GB cards.

Sharded (``parallelism="fsdp"``, for 4B-8B models): PyTorch FSDP2 shards parameters, gradients and AdamW states
over the ranks (see :mod:`rewardmodel.ml.sharded`). The data order, loss and metrics are the same as under DDP.
Checkpoints then hold ``config.json`` + tokenizer + ``sharded/`` (torch.distributed.checkpoint: model and
optimizer shards, re-shardable to another world size) instead of ``model.safetensors`` + ``optimizer.pt``;
``best/`` and ``final/`` are consolidated ``save_pretrained`` directories. Multi-node: the same command under
``torchrun --nnodes=N --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT`` with ``output_dir`` on a shared filesystem
(docs/training.md). ``--events-file`` / ``--cancel-file`` let a parent process (the app's launcher,
:mod:`rewardmodel.ml.launch`) follow progress and ask for a cancel.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from rewardmodel.ml import sharded
from rewardmodel.ml.callbacks import EventsFileCallback, PrintCallback, TrainingCallback, TrainingCancelled
from rewardmodel.ml.config import RewardTrainingConfig
from rewardmodel.ml.data import (
    LengthGroupedBatchSampler,
    PackedPreferenceCollator,
    PreferenceCollator,
    Record,
    TokenizedPairs,
    load_records,
    pad_batch,
    tokenize_records,
)
from rewardmodel.ml.evaluate import evaluate_scores
from rewardmodel.ml.loss import bt_loss
from rewardmodel.ml.modeling import (
    compute_rewards,
    compute_rewards_packed,
    load_reward_model,
    padding_free_problem,
    pick_device,
    save_model,
)

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
Collator = PreferenceCollator | PackedPreferenceCollator
STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class TrainResult:
    """What :func:`train` returns (on the main process; other ranks get the same step counts)."""

    output_dir: str
    final_dir: str
    best_dir: str | None
    global_step: int
    total_steps: int
    best_eval_accuracy: float | None
    best_step: int | None
    final_eval: dict[str, Any] | None
    last_metrics: dict[str, float]
    eval_history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: str | None = None
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for the TrainingJob's metrics field)."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class _Dist:
    """Process-group facts (world_size 1 when not under torchrun)."""

    rank: int
    world_size: int
    device: torch.device
    fsdp: bool = False
    owns_group: bool = False  # train() created a 1-process group for FSDP and destroys it at the end

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when a multi-process group is in use."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Synchronise ranks (no-op for one process)."""
        if self.active:
            dist.barrier()


@dataclass
class _State:
    """Resumable loop position and bookkeeping, stored as ``trainer_state.json``."""

    global_step: int = 0
    epoch: int = 0
    micro_batch: int = 0  # next micro-batch index (per rank) within ``epoch``
    world_size: int = 1
    best_eval_accuracy: float | None = None
    best_step: int | None = None
    eval_history: list[dict[str, Any]] = field(default_factory=list)
    last_metrics: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------------------------
def train(
    config: RewardTrainingConfig,
    train_records: str | os.PathLike[str] | Iterable[Record] | None = None,
    eval_records: str | os.PathLike[str] | Iterable[Record] | None = None,
    callbacks: Sequence[TrainingCallback] | None = None,
) -> TrainResult:
    """Train a Bradley-Terry reward model.

    Args:
        config: hyperparameters; ``config.output_dir`` receives checkpoints, ``best/`` and ``final/``.
        train_records: pair dicts or a JSONL path; None = ``config.train_file``.
        eval_records: pair dicts or a JSONL path (D_gold); None = ``config.eval_file`` (may be None: then no
            evaluation and no ``best/``).
        callbacks: objects with ``on_log(step, total_steps, metrics) -> bool | None`` (False cancels) and optional
            ``on_eval`` / ``on_save`` / ``on_train_end`` (see :mod:`rewardmodel.ml.callbacks`).

    Returns:
        :class:`TrainResult`.

    Raises:
        TrainingCancelled: a callback cancelled; a resumable checkpoint of the current step was saved first.
        ValueError: bad records (message names the record index) or no training data.
    """
    started = time.perf_counter()
    callbacks = list(callbacks or [])
    train_list = load_records(train_records if train_records is not None else config.train_file)
    eval_list = load_records(eval_records if eval_records is not None else config.eval_file)
    if not train_list:
        raise ValueError("no training records")
    ddp = _setup_distributed(fsdp=config.parallelism == "fsdp")
    try:
        return _run(config, train_list, eval_list, callbacks, ddp, started)
    finally:
        if ddp.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _run(
    config: RewardTrainingConfig,
    train_list: list[Record],
    eval_list: list[Record],
    callbacks: list[Any],
    ddp: _Dist,
    started: float,
) -> TrainResult:
    """The body of :func:`train` once the process group is set up."""
    out_dir = Path(config.output_dir)
    _set_seed(config.seed)

    resume_dir = _latest_checkpoint(out_dir) if config.resume else None
    if resume_dir is not None and sharded.is_sharded_checkpoint(resume_dir) != ddp.fsdp:
        kind = "sharded (FSDP)" if not ddp.fsdp else "a DDP checkpoint"
        raise ValueError(
            f"checkpoint {resume_dir} is {kind}; resume it with parallelism="
            f"{'fsdp' if not ddp.fsdp else 'ddp'}, or use a new output_dir"
        )
    if ddp.fsdp and resume_dir is not None:
        # The architecture comes from the checkpoint; the weights from its shards after sharding (below).
        model, tokenizer = sharded.load_skeleton(
            resume_dir, dtype=config.model_dtype, attn_implementation=config.attn_implementation
        )
    else:
        model, tokenizer = load_reward_model(
            resume_dir or config.model_name_or_path,
            dtype=config.model_dtype,
            # FSDP: load on the host; fully_shard moves only this rank's shards to the GPU.
            device="cpu" if ddp.fsdp else ddp.device,
            attn_implementation=config.attn_implementation,
        )
    max_length = _clamp_max_length(config.max_length, model)
    if config.padding_free and (problem := padding_free_problem(model)):
        raise ValueError(f"padding_free: {problem}")
    if config.padding_free and model.config._attn_implementation == "flex_attention" and ddp.device.type == "cpu":
        raise ValueError("padding_free: flex_attention has no backward on CPU; use sdpa (the default) on CPU")
    if config.padding_free and model.config._attn_implementation in ("sdpa", "eager"):
        logger.warning(
            "padding_free with %s attention builds a dense mask over the whole packed row (attention cost grows "
            "with its square); use flash_attention_2 or flex_attention on a GPU for speed",
            model.config._attn_implementation,
        )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    pairs = tokenize_records(train_list, tokenizer, max_length)
    eval_pairs = tokenize_records(eval_list, tokenizer, max_length) if eval_list else None

    sampler = LengthGroupedBatchSampler(pairs.lengths(), config.batch_size, config.seed, config.group_by_length)
    per_rank = len(sampler) // ddp.world_size
    if per_rank == 0:
        raise ValueError(f"{len(train_list)} pairs make fewer micro-batches than the {ddp.world_size} processes")
    steps_per_epoch = math.ceil(per_rank / config.gradient_accumulation_steps)
    total_steps = config.max_steps or steps_per_epoch * config.num_epochs

    wrapped = _wrap(model, ddp, config)  # before the optimizer: FSDP replaces the parameters by shards
    optimizer = _make_optimizer(model, config)
    scheduler = _make_scheduler(optimizer, config, total_steps)
    state = _State(world_size=ddp.world_size)
    if resume_dir is not None:
        state = _load_checkpoint(resume_dir, model, optimizer, scheduler, ddp)
        logger.info("resumed from %s at step %d", resume_dir, state.global_step)
    collator: Collator = (PackedPreferenceCollator if config.padding_free else PreferenceCollator)(
        tokenizer.pad_token_id, config.pad_to_multiple_of
    )
    use_bf16 = config.bf16 and ddp.device.type == "cuda"
    last_saved_step = state.global_step if resume_dir is not None else -1

    def save_checkpoint() -> str:
        nonlocal last_saved_step
        path = _save_checkpoint(out_dir, model, tokenizer, optimizer, scheduler, state, config, ddp)
        last_saved_step = state.global_step
        _notify(callbacks, ddp, "on_save", state.global_step, path, "checkpoint")
        return path

    def run_eval() -> dict[str, Any] | None:
        if eval_pairs is None:
            return None
        metrics = _evaluate(model, tokenizer, eval_list, eval_pairs, config, max_length, ddp)
        wrapped.train()
        is_best = False
        if metrics is not None:  # rank 0
            is_best = state.best_eval_accuracy is None or metrics["accuracy"] > state.best_eval_accuracy
            metrics = {**metrics, "step": state.global_step, "is_best": is_best}
            state.eval_history.append(metrics)
            if is_best:
                state.best_eval_accuracy, state.best_step = metrics["accuracy"], state.global_step
        is_best = _broadcast_flag(is_best, ddp)  # FSDP: every rank takes part in gathering the weights
        best_path = _save_best_if_needed(metrics if is_best else None, is_best, out_dir, model, tokenizer, ddp)
        if best_path:
            _notify(callbacks, ddp, "on_save", state.global_step, best_path, "best")
        return metrics

    # ----- the loop ----------------------------------------------------------------------------
    batches = _rank_batches(sampler, state.epoch, per_rank, ddp)
    while state.global_step < total_steps:
        if state.micro_batch >= len(batches):
            state.epoch, state.micro_batch = state.epoch + 1, 0
            batches = _rank_batches(sampler, state.epoch, per_rank, ddp)
        group = batches[state.micro_batch : state.micro_batch + config.gradient_accumulation_steps]
        t0 = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        sums, grad_norm = _train_step(wrapped, model, group, pairs, collator, optimizer, config, use_bf16, ddp)
        scheduler.step()
        state.micro_batch += len(group)
        state.global_step += 1
        elapsed = time.perf_counter() - t0
        n_pairs = max(sums[3], 1.0)
        state.last_metrics = {
            "loss": sums[0] / n_pairs,
            "accuracy": sums[1] / n_pairs,
            "mean_margin": sums[2] / n_pairs,
            "lr": lr,
            "grad_norm": grad_norm,
            "epoch": state.epoch + state.micro_batch / len(batches),
            "num_tokens": sums[4],
            "tokens_per_second": sums[4] / elapsed if elapsed > 0 else 0.0,
        }
        step = state.global_step
        cancel = False
        if step % config.logging_steps == 0 or step == total_steps:
            cancel |= _notify(callbacks, ddp, "on_log", step, total_steps, dict(state.last_metrics))
        if config.eval_every and step % config.eval_every == 0 and step < total_steps:
            metrics = run_eval()
            cancel |= _notify(callbacks, ddp, "on_eval", step, metrics)
        if config.save_every and step % config.save_every == 0 and step < total_steps:
            save_checkpoint()
        if _broadcast_flag(cancel, ddp):
            path = save_checkpoint() if last_saved_step != step else str(_checkpoint_path(out_dir, step))
            raise TrainingCancelled(step, path)

    # ----- the end -----------------------------------------------------------------------------
    if last_saved_step != state.global_step:
        save_checkpoint()
    final_eval = None
    if eval_pairs is not None:
        final_eval = run_eval()
        _notify(callbacks, ddp, "on_eval", state.global_step, final_eval)
        if ddp.is_main:  # the final eval may have found a new best: record it in the last checkpoint's state
            _write_json(_checkpoint_path(out_dir, state.global_step) / STATE_FILE, _state_dict(state))
    final_dir = out_dir / "final"
    full = _gather_full(model, ddp)
    if ddp.is_main:
        _replace_dir(final_dir, lambda tmp: _save_final(tmp, model, tokenizer, config, state, final_eval, full))
        _notify(callbacks, ddp, "on_save", state.global_step, str(final_dir), "final")
    ddp.barrier()
    best_dir = out_dir / "best"
    result = TrainResult(
        output_dir=str(out_dir),
        final_dir=str(final_dir),
        best_dir=str(best_dir) if state.best_step is not None else None,
        global_step=state.global_step,
        total_steps=total_steps,
        best_eval_accuracy=state.best_eval_accuracy,
        best_step=state.best_step,
        final_eval=final_eval,
        last_metrics=dict(state.last_metrics),
        eval_history=list(state.eval_history),
        resumed_from=str(resume_dir) if resume_dir else None,
        train_seconds=time.perf_counter() - started,
    )
    _notify(callbacks, ddp, "on_train_end", state.global_step, result)
    return result


# ---------------------------------------------------------------------------------------------------------------
# Step
# ---------------------------------------------------------------------------------------------------------------
def _train_step(
    wrapped: Any,
    model: Any,
    group: list[list[int]],
    pairs: TokenizedPairs,
    collator: Collator,
    optimizer: torch.optim.Optimizer,
    config: RewardTrainingConfig,
    use_bf16: bool,
    ddp: _Dist,
) -> tuple[list[float], float]:
    """One optimizer step over ``group`` (a list of micro-batches of pair indices).

    Returns ``([loss_sum, n_correct, margin_sum, n_pairs, n_tokens], grad_norm)``, sums over micro-batches and
    (under DDP) ranks, as Python floats. ``n_tokens`` counts real tokens (no padding) in both layouts.
    """
    wrapped.train()
    device = ddp.device
    flash = str(getattr(model.config, "_attn_implementation", "")).startswith("flash")
    sums = torch.zeros(5, dtype=torch.float64, device=device)
    for k, indices in enumerate(group):
        batch = collator([pairs.feature(i) for i in indices])
        margin = batch["margin"].to(device) if config.use_margin else None
        b = len(indices)
        sync = k == len(group) - 1 or not ddp.active
        with _sync_context(wrapped, ddp, sync):
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext():
                rewards, n_tokens = _batch_rewards(wrapped, batch, device, flash)  # (2B,)
            r_chosen, r_rejected = rewards[:b], rewards[b:]
            loss = bt_loss(r_chosen, r_rejected, margin)
            (loss / len(group)).backward()
        with torch.no_grad():
            diff = (r_chosen - r_rejected).double()
            sums += torch.stack(
                [
                    loss.detach().double() * b,
                    (diff > 0).sum().double(),
                    diff.sum(),
                    torch.tensor(float(b), device=device, dtype=torch.float64),
                    n_tokens.double(),
                ]
            )
    params = [p for p in model.parameters() if p.grad is not None]
    if config.max_grad_norm > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    else:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if ddp.active:
        dist.all_reduce(sums)
    return [float(x) for x in sums.tolist()], sharded.local_value(grad_norm)


def _batch_rewards(
    wrapped: Any, batch: dict[str, Any], device: torch.device, flash: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards (2B,) of a collated micro-batch and its real-token count (a tensor on ``device``).

    A padded batch (``attention_mask`` present) goes through :func:`compute_rewards`; a packed one
    (:class:`PackedPreferenceCollator`) through :func:`compute_rewards_packed`, with flash-attention's varlen
    arguments precomputed when ``flash``.
    """
    ids = batch["input_ids"].to(device, non_blocking=True)
    if "attention_mask" in batch:
        mask = batch["attention_mask"].to(device, non_blocking=True)
        return compute_rewards(wrapped, ids, mask), mask.sum()
    flash_kwargs: dict[str, Any] | None = None
    if flash:
        cu = batch["cu_seq_lens"].to(device, non_blocking=True)
        longest = int(batch["max_length"])
        flash_kwargs = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}
    rewards = compute_rewards_packed(
        wrapped,
        ids,
        batch["position_ids"].to(device, non_blocking=True),
        batch["reward_index"].to(device, non_blocking=True),
        flash_kwargs,
    )
    return rewards, batch["num_tokens"].to(device)


def _make_optimizer(model: Any, config: RewardTrainingConfig) -> torch.optim.Optimizer:
    """AdamW; biases and normalisation weights get no weight decay (HF Trainer convention)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # On the GPU the fused kernel, HF Trainer's default there ("adamw_torch_fused"): fewer kernel launches per step
    # than the multi-tensor loop; it also takes FSDP2's sharded (DTensor) parameters. The CPU keeps the loop.
    fused = all(p.is_cuda for p in decay + no_decay)
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        fused=fused or None,
    )


def warmup_steps_for(config: RewardTrainingConfig, total_steps: int) -> int:
    """Warm-up length: ``warmup_steps`` when > 0, else ``ceil(warmup_ratio * total_steps)``."""
    return config.warmup_steps if config.warmup_steps > 0 else math.ceil(config.warmup_ratio * total_steps)


def lr_lambda_for(config: RewardTrainingConfig, total_steps: int) -> Any:
    """Multiplier of the base LR at (0-based) step s: linear warm-up ``(s+1)/W`` for s < W, then 1 (constant) or
    ``(T - s) / (T - W)`` (linear, reaching 0 after the last step)."""
    warmup = warmup_steps_for(config, total_steps)
    linear = config.lr_scheduler == "linear"

    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not linear:
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return fn


def _make_scheduler(optimizer: torch.optim.Optimizer, config: RewardTrainingConfig, total_steps: int) -> Any:
    """LambdaLR with :func:`lr_lambda_for`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda_for(config, total_steps))


# ---------------------------------------------------------------------------------------------------------------
# Evaluation and saving
# ---------------------------------------------------------------------------------------------------------------
def _evaluate(
    model: Any,
    tokenizer: Any,
    records: list[Record],
    pairs: TokenizedPairs,
    config: RewardTrainingConfig,
    max_length: int,
    ddp: _Dist,
) -> dict[str, Any] | None:
    """Score the eval pairs (sharded over ranks) and return metrics on rank 0 (None elsewhere)."""
    from rewardmodel.ml.infer import Scorer

    idx = list(range(ddp.rank, len(pairs), ddp.world_size))
    seqs = [pairs.chosen[i] for i in idx] + [pairs.rejected[i] for i in idx]
    if ddp.fsdp:
        rewards = _score_collectively(model, tokenizer, seqs, math.ceil(len(pairs) / ddp.world_size), config, ddp)
    else:
        scorer = Scorer(model, tokenizer, max_length=max_length, batch_size=config.eval_batch_size, bf16=config.bf16)
        rewards = scorer.score_token_ids(seqs)
    shard = (idx, rewards[: len(idx)], rewards[len(idx) :])
    shards = [shard]
    if ddp.active:
        shards = [None] * ddp.world_size  # type: ignore[list-item]
        dist.all_gather_object(shards, shard)
    if not ddp.is_main:
        return None
    r_chosen = np.zeros(len(pairs), dtype=np.float32)
    r_rejected = np.zeros(len(pairs), dtype=np.float32)
    for ids, rc, rr in shards:
        r_chosen[ids], r_rejected[ids] = rc, rr
    return evaluate_scores(records, r_chosen, r_rejected)


def _score_collectively(
    model: Any, tokenizer: Any, seqs: list[Any], per_rank: int, config: RewardTrainingConfig, ddp: _Dist
) -> np.ndarray:
    """Rewards of this rank's ``seqs`` under FSDP, where every forward is a collective: each rank runs the same
    number of fixed-size batches (its ``2 * per_rank`` sequences, padded with repeats), sorted by length."""
    n = len(seqs)
    padded = list(seqs) + [seqs[0] if seqs else [tokenizer.pad_token_id]] * (2 * per_rank - n)
    order = sorted(range(len(padded)), key=lambda i: -len(padded[i]))
    out = np.zeros(len(padded), dtype=np.float32)
    use_bf16 = config.bf16 and ddp.device.type == "cuda"
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), config.eval_batch_size):
            chunk = order[start : start + config.eval_batch_size]
            ids, mask = pad_batch([padded[i] for i in chunk], tokenizer.pad_token_id, config.pad_to_multiple_of)
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext():
                r = compute_rewards(model, torch.from_numpy(ids).to(ddp.device), torch.from_numpy(mask).to(ddp.device))
            out[chunk] = r.cpu().numpy()
    return out[:n]


def _gather_full(model: Any, ddp: _Dist) -> dict[str, torch.Tensor] | None:
    """FSDP: the full weights on rank 0 (collective; call on every rank). DDP: None (the model itself is full)."""
    return sharded.full_state_dict(model) if ddp.fsdp else None


def _write_model(tmp: Path, model: Any, tokenizer: Any, full: dict[str, torch.Tensor] | None) -> None:
    """``save_pretrained`` the model, from the gathered weights ``full`` under FSDP."""
    if full is None:
        save_model(model, tokenizer, tmp)
    else:
        sharded.save_full_model(model.config, full, tokenizer, tmp)


def _save_best_if_needed(
    metrics: dict[str, Any] | None, is_best: bool, out_dir: Path, model: Any, tokenizer: Any, ddp: _Dist
) -> str | None:
    """Rank 0 writes ``best/`` (atomically) when ``is_best`` (the same on every rank); all ranks meet at a
    barrier (under FSDP they also gather the weights)."""
    path = None
    full = _gather_full(model, ddp) if is_best else None
    if ddp.is_main and metrics is not None:
        best = out_dir / "best"

        def write(tmp: Path) -> None:
            _write_model(tmp, model, tokenizer, full)
            _write_json(tmp / "eval_metrics.json", metrics)

        _replace_dir(best, write)
        path = str(best)
    ddp.barrier()
    return path


def _checkpoint_path(out_dir: Path, step: int) -> Path:
    """``out_dir/checkpoints/step-XXXXXXXX``."""
    return out_dir / CHECKPOINT_DIR / f"step-{step:08d}"


def _state_dict(state: _State) -> dict[str, Any]:
    """JSON form of the loop state."""
    return {
        "global_step": state.global_step,
        "epoch": state.epoch,
        "micro_batch": state.micro_batch,
        "world_size": state.world_size,
        "best_eval_accuracy": state.best_eval_accuracy,
        "best_step": state.best_step,
        "eval_history": state.eval_history,
        "last_metrics": state.last_metrics,
    }


def _rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU and CUDA RNG states."""
    out: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _save_checkpoint(
    out_dir: Path,
    model: Any,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: _State,
    config: RewardTrainingConfig,
    ddp: _Dist,
) -> str:
    """Write a complete resumable checkpoint for the current step, then prune old ones. Returns its path.

    Written to ``checkpoints/.tmp-step-*`` and renamed at the end, so ``step-*`` dirs are always complete.
    Every rank writes its own RNG state file; under FSDP every rank also writes its model and optimizer shards.
    """
    final = _checkpoint_path(out_dir, state.global_step)
    tmp = final.with_name(".tmp-" + final.name)
    if ddp.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        if ddp.fsdp:
            tmp.mkdir(parents=True)
            model.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        else:
            save_model(model, tokenizer, tmp)
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        _write_json(tmp / "training_config.json", config.to_dict())
    ddp.barrier()
    if ddp.fsdp:
        sharded.save_sharded(tmp / sharded.SHARDED_DIR, model, optimizer)
    torch.save(_rng_state(), tmp / f"rng_state_{ddp.rank}.pt")
    ddp.barrier()
    if ddp.is_main:
        _write_json(tmp / STATE_FILE, _state_dict(state))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _prune_checkpoints(out_dir, config.save_total_limit)
    ddp.barrier()
    return str(final)


def _prune_checkpoints(out_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints (keep=0 keeps all)."""
    if keep <= 0:
        return
    for path in _list_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def _list_checkpoints(out_dir: Path) -> list[Path]:
    """Complete checkpoints (``step-N`` dirs holding a state file), oldest first."""
    root = out_dir / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()
    ]
    return [p for _, p in sorted(found)]


def _latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint under ``out_dir``, or None."""
    found = _list_checkpoints(out_dir)
    return found[-1] if found else None


def _load_checkpoint(path: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any, ddp: _Dist) -> _State:
    """Restore optimizer, scheduler and RNG states from a checkpoint; return the loop state.

    DDP: the model weights were already loaded from ``path`` by ``from_pretrained``. FSDP: model and optimizer
    shards are loaded here (collective). When the world size changed, the position within the epoch is converted
    through the global micro-batch count.
    """
    if ddp.fsdp:
        sharded.load_sharded(path / sharded.SHARDED_DIR, model, optimizer)
    else:
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=ddp.device, weights_only=False))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    raw = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    state = _State(
        global_step=raw["global_step"],
        epoch=raw["epoch"],
        micro_batch=raw["micro_batch"],
        world_size=ddp.world_size,
        best_eval_accuracy=raw.get("best_eval_accuracy"),
        best_step=raw.get("best_step"),
        eval_history=raw.get("eval_history", []),
        last_metrics=raw.get("last_metrics", {}),
    )
    if raw.get("world_size", 1) != ddp.world_size:
        state.micro_batch = raw["micro_batch"] * raw.get("world_size", 1) // ddp.world_size
        logger.warning("world size changed from %s to %s on resume", raw.get("world_size"), ddp.world_size)
    rng_file = path / f"rng_state_{ddp.rank}.pt"
    if not rng_file.exists():
        rng_file = path / "rng_state_0.pt"
    if rng_file.exists():
        rng = torch.load(rng_file, weights_only=False)
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(rng["cuda"])
    return state


def _save_final(
    tmp: Path,
    model: Any,
    tokenizer: Any,
    config: RewardTrainingConfig,
    state: _State,
    final_eval: dict[str, Any] | None,
    full: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write the final model (from the gathered weights ``full`` under FSDP) with its config and last metrics."""
    _write_model(tmp, model, tokenizer, full)
    _write_json(tmp / "training_config.json", config.to_dict())
    _write_json(
        tmp / "train_metrics.json",
        {"global_step": state.global_step, "last_metrics": state.last_metrics, "final_eval": final_eval},
    )


def _replace_dir(target: Path, write: Any) -> None:
    """Build a directory under a temporary name with ``write(tmp)``, then swap it in for ``target``."""
    tmp = target.with_name(".tmp-" + target.name)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    if target.exists():
        old = target.with_name(".old-" + target.name)
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _write_json(path: Path, data: Any) -> None:
    """Write JSON (NaN allowed, non-JSON values stringified)."""
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Distributed helpers and small utilities
# ---------------------------------------------------------------------------------------------------------------
def _setup_distributed(fsdp: bool = False) -> _Dist:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, Gloo on CPU); pick the device.

    FSDP in a single process (no torchrun) gets a 1-rank group on an in-memory store, so the sharded code path and
    checkpoint format are the same at every world size.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = pick_device()
    backend = "nccl" if device.type == "cuda" else "gloo"
    owns = False
    if device.type == "cuda" and (world > 1 or fsdp):
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend)
    elif fsdp and not dist.is_initialized():
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
        owns = True
    return _Dist(rank=rank, world_size=world, device=device, fsdp=fsdp, owns_group=owns)


def _wrap(model: Any, ddp: _Dist, config: RewardTrainingConfig) -> Any:
    """FSDP2 shards the model in place (returned as is); DDP wraps it when multi-process; else the model itself."""
    if ddp.fsdp:
        return sharded.shard_model(
            model,
            device=ddp.device,
            reshard_after_forward=config.fsdp_reshard_after_forward,
            cpu_offload=config.fsdp_cpu_offload,
        )
    if not ddp.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ddp.device.index] if ddp.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def _sync_context(wrapped: Any, ddp: _Dist, sync: bool) -> Any:
    """No gradient all-reduce / reduce-scatter on accumulation micro-batches (``sync=False``)."""
    if ddp.fsdp:
        return sharded.gradient_sync(wrapped, sync)
    return wrapped.no_sync() if not sync else contextlib.nullcontext()


def _rank_batches(sampler: LengthGroupedBatchSampler, epoch: int, per_rank: int, ddp: _Dist) -> list[list[int]]:
    """This rank's micro-batches of an epoch: every ``world_size``-th one, cut to the same count on every rank."""
    return sampler.batches(epoch)[ddp.rank :: ddp.world_size][:per_rank]


def _broadcast_flag(flag: bool, ddp: _Dist) -> bool:
    """Rank 0's flag, on every rank."""
    if not ddp.active:
        return flag
    t = torch.tensor([1 if flag else 0], device=ddp.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def _notify(callbacks: Sequence[Any], ddp: _Dist, hook: str, *args: Any) -> bool:
    """Call ``hook`` on every callback that has it (rank 0 only). True when one returned False or raised
    TrainingCancelled (a cancel request)."""
    if not ddp.is_main:
        return False
    cancel = False
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is None:
            continue
        try:
            if fn(*args) is False:
                cancel = True
        except TrainingCancelled:
            cancel = True
    return cancel


def _set_seed(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _clamp_max_length(max_length: int, model: Any) -> int:
    """``max_length`` capped at the model's ``max_position_embeddings`` (BERT: 512)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    return min(max_length, int(limit)) if limit else max_length


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> TrainResult | None:
    """``python -m rewardmodel.ml.train --config cfg.json [--train a.jsonl] [--eval gold.jsonl] [--output-dir D]
    [--events-file E --cancel-file C]``.

    Works the same under ``torchrun --nproc_per_node=N`` (and ``--nnodes``). Prints one JSON line per
    log/eval/save event (rank 0); with ``--events-file`` rank 0 also appends them there, then a last ``done``
    (with the :class:`TrainResult`), ``cancelled`` or ``error`` event. Creating the ``--cancel-file`` stops the
    run at its next logged step after a checkpoint; a cancelled run exits 0 (it is resumable, not broken).
    Returns the result, or None when cancelled.
    """
    parser = argparse.ArgumentParser(description="Train a Bradley-Terry reward model.")
    parser.add_argument("--config", help="JSON file of RewardTrainingConfig fields (defaults otherwise)")
    parser.add_argument("--train", help="training JSONL (overrides train_file)")
    parser.add_argument("--eval", help="evaluation JSONL (overrides eval_file)")
    parser.add_argument("--output-dir", help="overrides output_dir")
    parser.add_argument("--model", help="overrides model_name_or_path")
    parser.add_argument("--events-file", help="rank 0 appends JSON-line events here (for a parent process)")
    parser.add_argument("--cancel-file", help="the run stops (after a checkpoint) once this file exists")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.config).read_text(encoding="utf-8")) if args.config else {}
    for key, value in (
        ("train_file", args.train),
        ("eval_file", args.eval),
        ("output_dir", args.output_dir),
        ("model_name_or_path", args.model),
    ):
        if value:
            data[key] = value
    config = RewardTrainingConfig.from_dict(data)
    logging.basicConfig(level=logging.INFO)
    is_main = int(os.environ.get("RANK", "0")) == 0
    events = EventsFileCallback(args.events_file, args.cancel_file) if args.events_file else None
    callbacks: list[Any] = [PrintCallback()] + ([events] if events else [])
    final: dict[str, Any]
    result: TrainResult | None = None
    try:
        result = train(config, callbacks=callbacks)
        final = {"event": "done", "result": result.to_dict()}
    except TrainingCancelled as exc:
        final = {"event": "cancelled", "step": exc.step, "checkpoint": exc.checkpoint}
    except BaseException as exc:
        if events and is_main:
            events.write({"event": "error", "error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if is_main:
        if events:
            events.write(final)
        summary = dict(final)
        if result is not None:
            summary = {
                "event": "done",
                "final_dir": result.final_dir,
                "best_dir": result.best_dir,
                "best_eval_accuracy": result.best_eval_accuracy,
                "global_step": result.global_step,
            }
        print(json.dumps(summary, default=str))
    return result


if __name__ == "__main__":
    main()
