"""Text embeddings for retrieval (curation embeds conversation + attributes and searches D_un by cosine).

Default model: the packaged MiniLM-L6 sentence encoder, used exactly as sentence-transformers does (mean pooling
over real tokens, then L2 normalisation, 256-token limit, head kept), so vectors are 384-d unit vectors and the
inner product is the cosine similarity (FAISS ``IndexFlatIP`` / IVF with inner product).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardmodel.ml.data import pad_batch
from rewardmodel.ml.infer import length_sorted_batches


class Embedder:
    """A loaded encoder for repeated embedding calls."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        max_length: int = 256,
        batch_size: int = 64,
    ) -> None:
        """Load ``AutoModel`` + tokenizer from ``model_path`` (None = packaged MiniLM) onto ``device``.

        ``max_length`` tokens per text (longer texts keep their head, as sentence-transformers does).
        """
        from transformers import AutoModel, AutoTokenizer

        from rewardmodel.ml.modeling import pick_device, quiet_transformers, resolve_model_path

        path = resolve_model_path(model_path)
        with quiet_transformers():
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path, local_files_only=True)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model.to(pick_device(device)).eval()
        limit = getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = min(max_length, limit) if limit else max_length
        self.batch_size = batch_size
        self.key = embedder_key(path, self.model.config.to_json_string(), self.max_length)

    @property
    def dim(self) -> int:
        """Embedding dimension D (384 for MiniLM)."""
        return int(self.model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed N texts: returns float32 (N, D), rows L2-normalised, in input order (N = 0 gives (0, D)).

        Texts are tokenised with truncation, sorted by length and run in batches of ``batch_size`` with dynamic
        padding under ``torch.inference_mode`` (bf16 autocast on CUDA).
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        lengths = np.array([len(x) for x in ids])
        device = next(self.model.parameters()).device
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
        for idx in length_sorted_batches(lengths, self.batch_size):
            batch_ids, batch_mask = pad_batch([ids[i] for i in idx], self.tokenizer.pad_token_id)
            with torch.inference_mode(), autocast:
                mask = torch.from_numpy(batch_mask).to(device)
                hidden = self.model(
                    input_ids=torch.from_numpy(batch_ids).to(device), attention_mask=mask
                ).last_hidden_state
                out[idx] = mean_pool(hidden.float(), mask).cpu().numpy()
        return out


def embedder_key(model_path: str | os.PathLike[str], config_json: str, max_length: int) -> str:
    """A name for "vectors from this encoder", stable across machines: ``<dir name>-L<max_length>-<hash>``.

    The hash covers the model config, the token limit and the names and sizes of the files in the model directory
    (weights, tokenizer), so a fine-tuned copy with the same config but other weights gets another key, while the
    same package installed under another path keeps its key. Stored embeddings are filed under it.
    """
    root = Path(model_path)
    h = hashlib.sha256(config_json.encode())
    h.update(str(max_length).encode())
    if root.is_dir():
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(root)}:{f.stat().st_size}".encode())
    return f"{root.name or 'model'}-L{max_length}-{h.hexdigest()[:12]}"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Mean of token states over real tokens: (N, L, D) states and (N, L) mask -> (N, D), L2-normalised if asked."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    pooled = summed / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled


@functools.lru_cache(maxsize=2)
def cached_embedder(model_path: str | None = None, device: str | None = None) -> Embedder:
    """One Embedder per (model, device) per process, so repeated callers load the weights once."""
    return Embedder(model_path, device=device)


def embed_texts(
    texts: Sequence[str],
    model_path: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Embed texts with a process-wide cached :class:`Embedder` (packaged MiniLM by default): float32 (N, D).

    ``kwargs`` (``batch_size``) are applied to the cached embedder for this call.
    """
    emb = cached_embedder(str(model_path) if model_path is not None else None, device)
    if "batch_size" in kwargs:
        emb.batch_size = int(kwargs["batch_size"])
    return emb.embed(texts)


def embed_records(
    records: Sequence[dict[str, Any]],
    attributes: Sequence[dict[str, Any] | None] | None = None,
    model_path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Embed the conversations of preference records, each with its optional attribute dict: float32 (N, D).

    The text is :func:`rewardmodel.ml.data.conversation_text` (attributes as sorted ``key: value`` lines, then the
    turns), the retrieval key of the paper's error-driven sampling.
    """
    from rewardmodel.ml.data import conversation_text

    attrs = attributes if attributes is not None else [None] * len(records)
    return embed_texts([conversation_text(r["prompt"], a) for r, a in zip(records, attrs, strict=True)], model_path)
