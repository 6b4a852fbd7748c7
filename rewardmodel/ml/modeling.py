"""Loading reward models and computing rewards: the one place that knows transformers' model API."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from rewardmodel.ml.data import prepare_tokenizer

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info/warning logs and progress bars inside the block (restored afterwards).

    Loading a backbone into a sequence classifier always warns about the new score head, and every load/save
    draws progress bars; in a Celery worker's log that is noise.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to use: the given one, else ``cuda:LOCAL_RANK`` when CUDA is present, else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def resolve_model_path(path: str | os.PathLike[str] | None) -> str:
    """``path`` as a string, or the packaged MiniLM backbone directory when None."""
    if path is None:
        from rewardmodel.ml.backbones import default_backbone_path

        return str(default_backbone_path())
    return str(path)


def load_tokenizer(path: str | os.PathLike[str] | None) -> Any:
    """AutoTokenizer from a local directory, prepared for reward modelling (pad token set, right padding)."""
    from transformers import AutoTokenizer

    with quiet_transformers():
        return prepare_tokenizer(AutoTokenizer.from_pretrained(resolve_model_path(path)))


def load_reward_model(
    path: str | os.PathLike[str] | None = None,
    *,
    dtype: str | torch.dtype | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str | None = None,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local HF checkpoint dir as a 1-label sequence classifier.

    Works for any ``AutoModelForSequenceClassification`` architecture (Qwen3, Llama, BERT, ...). A checkpoint of a
    bare backbone (e.g. ``BertModel`` or ``Qwen3ForCausalLM``) gets a newly initialised score head. The tokenizer's
    pad token is set (EOS when missing), ``model.config.pad_token_id`` follows it (transformers pools decoder
    rewards at the rightmost token that is not the pad id; BERT-style encoders pool at ``[CLS]``), and the KV
    cache is switched off (never useful for scoring). Nothing is downloaded: ``path`` must be local.

    Args:
        path: checkpoint directory; None = the packaged MiniLM.
        dtype: parameter dtype (``"float32"``, ``"bfloat16"`` or a torch dtype); None = float32.
        device: where to put the model; None = :func:`pick_device`.
        attn_implementation: e.g. ``"sdpa"``, ``"eager"``, ``"flash_attention_2"``; None = default.
    """
    from transformers import AutoModelForSequenceClassification

    resolved = resolve_model_path(path)
    tokenizer = load_tokenizer(resolved)
    torch_dtype = _DTYPES[dtype] if isinstance(dtype, str) else (dtype or torch.float32)
    kwargs: dict[str, Any] = {"num_labels": 1, "dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with quiet_transformers():  # the "newly initialised score head" warning is expected from a backbone
        model = AutoModelForSequenceClassification.from_pretrained(resolved, local_files_only=True, **kwargs)
    if model.config.num_labels != 1:
        raise ValueError(f"{resolved}: expected num_labels=1, got {model.config.num_labels}")
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    keep_eos_trainable(model, tokenizer)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False
    model.to(pick_device(device))
    return model, tokenizer


def keep_eos_trainable(model: Any, tokenizer: Any) -> None:
    """When the pad token is the EOS token (decoders shipped without a pad token), the embedding must not treat it
    as padding: EOS ends every response and is where the reward is read. ``nn.Embedding(padding_idx=...)`` would
    zero its gradient, and a checkpoint saved with ``pad_token_id = eos`` would build its embedding that way on
    reload, so a resumed run would train differently from an uninterrupted one."""
    eos = getattr(tokenizer, "eos_token_id", None)
    embedding = model.get_input_embeddings()
    if eos is not None and tokenizer.pad_token_id == eos and getattr(embedding, "padding_idx", None) == eos:
        embedding.padding_idx = None


def compute_rewards(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Rewards of a right-padded batch.

    Args:
        model: a 1-label ``*ForSequenceClassification`` (possibly DDP-wrapped).
        input_ids: (N, L) int64.
        attention_mask: (N, L), 1 on real tokens.

    Returns:
        (N,) rewards in float32: the score head's logit at the last non-pad token (decoders) or at ``[CLS]``
        (BERT-style encoders).
    """
    out = model(input_ids=input_ids, attention_mask=attention_mask)
    return out.logits[:, 0].float()


def _unwrap(model: Any) -> Any:
    """The module under a DDP wrapper (FSDP2 shards in place, so an FSDP model is its own inner module)."""
    return model.module if hasattr(model, "module") else model


def padding_free_problem(model: Any) -> str | None:
    """Why ``model`` cannot take packed (padding-free) rows, in one sentence; None when it can.

    It can when it is a transformers decoder classifier built on ``GenericForSequenceClassification`` (Qwen2/3,
    Llama, Mistral, Gemma, ...: a causal base model that builds its attention mask from ``position_ids``, and a
    per-token ``score`` head), its attention is causal, and its attention implementation is one whose masking
    understands packed position ids (:data:`rewardmodel.ml.config.PADDING_FREE_ATTENTION`). Encoders such as
    BERT / MiniLM attend both ways and pool at ``[CLS]``, so they cannot.
    """
    from transformers.modeling_layers import GenericForSequenceClassification

    from rewardmodel.ml.config import PADDING_FREE_ATTENTION

    inner = _unwrap(model)
    name = type(inner).__name__
    if not isinstance(inner, GenericForSequenceClassification) or not isinstance(
        getattr(inner, "score", None), torch.nn.Module
    ):
        return (
            f"{name} cannot take packed rows: padding_free needs a decoder reward model on transformers' "
            "GenericForSequenceClassification (Qwen2/Qwen3, Llama, Mistral, Gemma, ...); "
            "set padding_free to false for this model"
        )
    config = _unwrap(model).config  # (not narrowed: mypy does not know the mixin has a config)
    if not getattr(config, "is_causal", True):
        return f"{name} is configured with bidirectional attention (is_causal=False), which ignores packed positions"
    impl = getattr(config, "_attn_implementation", None)
    if impl not in PADDING_FREE_ATTENTION:
        return f"attention implementation {impl!r} cannot take packed rows; use one of {PADDING_FREE_ATTENTION}"
    return None


def compute_rewards_packed(
    model: Any,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    reward_index: torch.Tensor,
    flash_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Rewards of a packed (padding-free) row (see :class:`rewardmodel.ml.data.PackedPreferenceCollator`).

    Args:
        model: a 1-label decoder classifier that passes :func:`padding_free_problem` (possibly DDP-wrapped or
            FSDP-sharded; the call goes through ``model`` so the wrappers' hooks run).
        input_ids: (1, T) int64, sequences back to back.
        position_ids: (1, T) int64, restarting at 0 per sequence (the attention masking reads the boundaries
            from them; no attention mask is passed, and the KV cache is off, which transformers needs to detect
            packing).
        reward_index: (S,) int64, the position of each sequence's reward token in the row.
        flash_kwargs: for flash attention, ``cu_seq_lens_q/k`` ((S + 1,) int32 on the device) and
            ``max_length_q/k`` (int), so the varlen kernels need not rebuild them from ``position_ids`` per layer.

    Returns:
        (S,) float32 rewards: the score head's per-token logits at ``reward_index``. The classifier's own pooling
        (one token per row) is bypassed: a forward hook on the score head keeps its (1, T, 1) output, which stays
        in the autograd graph; the backward also passes through the returned logits (see the code), so DDP and FSDP see an
        ordinary forward and backward of the wrapped model.
    """
    head = _unwrap(model).score
    captured: list[torch.Tensor] = []
    handle = head.register_forward_hook(lambda _module, _args, output: captured.append(output))
    try:
        out = model(input_ids=input_ids, position_ids=position_ids, use_cache=False, **(flash_kwargs or {}))
    finally:
        handle.remove()
    if len(captured) != 1:
        raise RuntimeError(f"expected one call of the score head in a forward, got {len(captured)}")
    rewards = captured[0][0, reward_index, 0].float()
    # FSDP2 re-gathers the root's parameters (embeddings, final norm, score head) for the backward through hooks on
    # the root forward's *outputs*; rewards taken from the hook alone would bypass them and the backward would meet
    # freed shards. A zero-weighted term routes the backward through the returned logits (no effect on values).
    return rewards + 0.0 * out.logits.float().sum()


def save_model(model: Any, tokenizer: Any, directory: str | os.PathLike[str]) -> Path:
    """``save_pretrained`` model (safetensors) and tokenizer into ``directory`` (unwrapping DDP). Returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    inner = model.module if hasattr(model, "module") else model
    with quiet_transformers():
        inner.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    return directory
