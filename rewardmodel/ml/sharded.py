"""Sharded data parallelism (PyTorch FSDP2, ``torch.distributed.fsdp.fully_shard``) for the reward-model loop.

What :mod:`rewardmodel.ml.train` uses when ``config.parallelism == "fsdp"``:

* :func:`shard_model` shards every transformer block (the classes in the model's ``_no_split_modules``: e.g.
  ``Qwen3DecoderLayer``, ``LlamaDecoderLayer``) and then the root, over a 1-D device mesh of all ranks. Parameters,
  gradients and AdamW states are then split ``world_size`` ways (ZeRO-3); ``reshard_after_forward=False`` keeps
  the gathered parameters between forward and backward (ZeRO-2-like: more memory, one all-gather less per block).
  ``cpu_offload`` moves the sharded parameters, gradients and optimizer states to host memory (CUDA only).
* :func:`save_sharded` / :func:`load_sharded` write and read model + optimizer with ``torch.distributed.checkpoint``
  (DCP): each rank writes its own shards, and DCP re-shards on load, so a checkpoint saved on 8 ranks loads on 4.
* :func:`full_state_dict` gathers the full (unsharded) weights to rank 0's CPU, for ``best/`` and ``final/``.
* :func:`consolidate_checkpoint` turns a sharded checkpoint directory into a normal ``save_pretrained`` directory in
  one process, without a process group (e.g. to take a model out of a cancelled run).

Works on CPU with Gloo (the tests run 2 processes) and on CUDA with NCCL. No Django.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

SHARDED_DIR = "sharded"
"""Sub-directory of a checkpoint that holds the DCP shards (model + optimizer)."""


def is_sharded_checkpoint(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a checkpoint written by the FSDP path (it holds a ``sharded/`` DCP directory)."""
    return (Path(path) / SHARDED_DIR / ".metadata").is_file()


def block_classes(model: Any) -> set[str]:
    """Class names of the model's transformer blocks (HF ``_no_split_modules``), the units that are sharded."""
    return set(getattr(model, "_no_split_modules", None) or [])


def shard_model(
    model: torch.nn.Module,
    *,
    device: torch.device,
    reshard_after_forward: bool = True,
    cpu_offload: bool = False,
) -> torch.nn.Module:
    """Apply FSDP2 in place: each transformer block, then the root. Needs an initialised process group.

    Returns the same module (now an ``FSDPModule``). Build the optimizer afterwards: its parameters are the
    sharded DTensors.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    kwargs: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": reshard_after_forward}
    if cpu_offload and device.type == "cuda":
        kwargs["offload_policy"] = CPUOffloadPolicy()
    names = block_classes(model)
    for module in model.modules():
        if module is not model and type(module).__name__ in names:
            fully_shard(module, **kwargs)
    fully_shard(model, **kwargs)
    return model


@contextlib.contextmanager
def gradient_sync(model: Any, sync: bool) -> Iterator[None]:
    """FSDP2's ``no_sync``: with ``sync=False`` gradients accumulate unsharded locally (no reduce-scatter) until a
    micro-batch with ``sync=True``."""
    model.set_requires_gradient_sync(sync)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def local_value(tensor: Any) -> float:
    """A (possibly DTensor) scalar as a Python float (the total gradient norm is a replicated DTensor)."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return float(tensor)


def save_sharded(path: str | os.PathLike[str], model: Any, optimizer: torch.optim.Optimizer) -> None:
    """Collective: every rank writes its shards of model and optimizer under ``path`` (DCP format)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))


def load_sharded(path: str | os.PathLike[str], model: Any, optimizer: torch.optim.Optimizer) -> None:
    """Collective: restore model and optimizer shards from ``path`` (any world size may have written it)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(model, optimizer)
    state: dict[str, Any] = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])


def full_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Collective: the full weights, gathered to CPU on rank 0 (an empty dict on the other ranks)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full: dict[str, Any] = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return full


def save_full_model(config: Any, state_dict: dict[str, torch.Tensor], tokenizer: Any, directory: Path) -> Path:
    """Write ``state_dict`` as a ``save_pretrained`` directory of the architecture in ``config`` (rank 0 only).

    The model is built on the meta device and the gathered tensors are assigned, so host memory holds the weights
    once.
    """
    from transformers import AutoModelForSequenceClassification

    from rewardmodel.ml.modeling import quiet_transformers

    directory.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
        model.load_state_dict(state_dict, strict=True, assign=True)
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return directory


def consolidate_checkpoint(checkpoint_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Turn a sharded checkpoint into a ``save_pretrained`` directory, in this one process (no process group).

    ``checkpoint_dir`` is a ``checkpoints/step-*`` directory of an FSDP run (it holds ``config.json``, the tokenizer
    and ``sharded/``). Returns ``out_dir``, loadable with ``from_pretrained`` / ``load_reward_model``.
    """
    import torch.distributed.checkpoint as dcp
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rewardmodel.ml.modeling import load_tokenizer, quiet_transformers

    src = Path(checkpoint_dir)
    if not is_sharded_checkpoint(src):
        raise ValueError(f"{src} is not a sharded checkpoint (no {SHARDED_DIR}/.metadata)")
    with quiet_transformers():
        config = AutoConfig.from_pretrained(src, local_files_only=True)
        model = AutoModelForSequenceClassification.from_config(config)
    state = {"model": model.state_dict()}
    dcp.load(state, checkpoint_id=str(src / SHARDED_DIR), no_dist=True)
    model.load_state_dict(state["model"], strict=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(out)
    load_tokenizer(src).save_pretrained(out)
    return out


def load_skeleton(
    checkpoint_dir: str | os.PathLike[str], *, dtype: str | None = None, attn_implementation: str | None = None
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a sharded checkpoint's architecture, on CPU with freshly initialised weights.

    Resuming an FSDP run builds this, shards it and then loads the DCP shards over it, so the base checkpoint the
    run started from need not exist any more.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rewardmodel.ml.modeling import keep_eos_trainable, load_tokenizer, quiet_transformers

    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with quiet_transformers():
        config = AutoConfig.from_pretrained(checkpoint_dir, local_files_only=True)
        model = AutoModelForSequenceClassification.from_config(config, **kwargs)
    if dtype == "bfloat16":
        model.to(torch.bfloat16)
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    tokenizer = load_tokenizer(checkpoint_dir)
    keep_eos_trainable(model, tokenizer)
    return model, tokenizer
