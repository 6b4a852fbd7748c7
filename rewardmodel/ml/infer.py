"""Batched reward scoring, from a few records to millions of pairs streamed through JSONL files.

Throughput comes from (1) sorting sequences by length (longest first) so each batch pads to a similar length,
(2) dynamic padding to the batch's own longest sequence, (3) a token budget (``max_batch_tokens``) that lets short
batches grow up to ``batch_size`` sequences while long ones shrink, (4) ``torch.inference_mode`` and (5) bf16
autocast on CUDA. Results are put back in input order.

Bulk use::

    scorer = Scorer.from_pretrained("models/rm-17")             # loads once; reuse for many calls
    scorer.score_pairs(records)                                  # {"r_chosen", "r_rejected", "p"} numpy arrays
    scorer.score_file("d_un.jsonl", "scores.jsonl", chunk_size=20_000, progress=cb)

CLI: ``python -m rewardmodel.ml.infer --model DIR --input pairs.jsonl --output scores.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardmodel.ml.callbacks import ScoringCancelled
from rewardmodel.ml.data import (
    Message,
    Record,
    SequenceEncoder,
    _special_wrapping,
    iter_chunks,
    pad_batch,
    read_jsonl,
    validate_record,
)

DEFAULT_MAX_LENGTH = 1024


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float64 in, float64 out."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def model_position_limit(model: Any, tokenizer: Any) -> int | None:
    """The longest sequence the model can take (``max_position_embeddings``, else a sane tokenizer limit)."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if limit is None and isinstance(tok_limit, int) and tok_limit < 1_000_000:
        limit = tok_limit
    return int(limit) if limit else None


def length_sorted_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, max_batch_tokens: int = 0
) -> list[np.ndarray]:
    """Indices grouped into batches after sorting by length, longest first.

    A batch holds at most ``batch_size`` sequences and, when ``max_batch_tokens`` > 0, at most
    ``max_batch_tokens // longest_in_batch`` of them (at least one). Every index appears exactly once.
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    i = 0
    while i < len(order):
        longest = max(int(lengths[order[i]]), 1)
        size = batch_size
        if max_batch_tokens > 0:
            size = max(1, min(batch_size, max_batch_tokens // longest))
        batches.append(order[i : i + size])
        i += size
    return batches


def set_torch_threads(n: int) -> int:
    """Set torch's intra-op threads of this process to ``n`` (0 leaves torch's default); returns the count in use.

    Two scoring worker processes on a 2-core host with torch's default (one thread per core each) run four
    threads on two cores; the busy-waiting of the surplus threads costs more than the threads gain. A worker
    process should use ``cores // processes`` threads (see ``RM_TORCH_THREADS``).
    """
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return int(torch.get_num_threads())


class _EncodingMemo:
    """The token ids of the last batch encoded, reused when the same texts come again for the same tokenisation.

    Stage 2 scores each chunk with two models (gold and current best) that usually share a tokenizer: the second
    :meth:`Scorer.score_pairs` call then skips tokenising. A hit needs the same encoding key (tokenizer contents,
    chat template, special tokens, ``max_length``) and the same prompts and responses (the same objects, or equal
    ones). Holds one batch; thread-safe by replacing one tuple.
    """

    def __init__(self) -> None:
        self._last: tuple[Any, list[Any], list[str], list[np.ndarray]] | None = None

    def encode(self, key: Any, encoder: SequenceEncoder, prompts: list[Any], responses: list[str]) -> list[np.ndarray]:
        last = self._last
        if (
            last is not None
            and last[0] == key
            and len(last[1]) == len(prompts)
            and all(a is b or a == b for a, b in zip(last[2], responses, strict=True))
            and all(a is b or a == b for a, b in zip(last[1], prompts, strict=True))
        ):
            return last[3]
        seqs = encoder.encode(prompts, responses)
        self._last = (key, prompts, responses, seqs)
        return seqs


ENCODINGS = _EncodingMemo()


def encoding_key(tokenizer: Any, encoder: SequenceEncoder) -> str:
    """A digest of everything that decides the token ids of a (conversation, response): two scorers with equal keys
    tokenise identically (the fast tokenizer's full JSON, or the slow one's vocabulary, plus template, special
    tokens and ``max_length``)."""
    import hashlib

    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    parts = [type(tokenizer).__name__, body, str(getattr(tokenizer, "chat_template", None))]
    parts += [str(encoder.use_chat_template), str(encoder.prefix), str(encoder.suffix), str(encoder.max_length)]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


class Scorer:
    """A loaded reward model (or another backend, see :class:`rewardmodel.ml.export.OnnxScorer`) for repeated use.

    Subclasses only override :meth:`score_padded`; tokenisation, truncation, sorting and batching are shared.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 64,
        max_batch_tokens: int = 16384,
        bf16: bool = True,
        pad_to_multiple_of: int = 0,
    ) -> None:
        """Wrap an already loaded ``(model, tokenizer)`` (tokenizer prepared by ``prepare_tokenizer``).

        Args:
            max_length: per-sequence token limit (clamped to the model's position limit); truncation keeps the
                response (see :class:`rewardmodel.ml.data.SequenceEncoder`).
            batch_size: most sequences per forward pass.
            max_batch_tokens: most padded tokens per forward pass (0 = no token budget).
            bf16: use bf16 autocast when the model is on CUDA (ignored on CPU).
            pad_to_multiple_of: round padded lengths up (e.g. 8 on GPU).
        """
        self.model = model
        self.tokenizer = tokenizer
        limit = model_position_limit(model, tokenizer) if model is not None else None
        self.max_length = min(max_length, limit) if limit else max_length
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.bf16 = bf16
        self.pad_to_multiple_of = pad_to_multiple_of
        self.encoder = SequenceEncoder(tokenizer, self.max_length)
        self._encoding_key: str | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        attn_implementation: str | None = None,
        num_threads: int = 0,
        **kwargs: Any,
    ) -> Scorer:
        """Load a checkpoint directory (None = packaged MiniLM) on ``device`` (default CUDA when present).

        On CUDA with ``dtype=None`` the weights stay float32 and bf16 autocast is used; pass ``dtype="bfloat16"`` to
        halve memory for large models. ``num_threads`` > 0 sets this process's torch threads first
        (:func:`set_torch_threads`). Other keyword arguments go to :meth:`__init__`.
        """
        from rewardmodel.ml.modeling import load_reward_model

        set_torch_threads(num_threads)
        model, tokenizer = load_reward_model(path, dtype=dtype, device=device, attn_implementation=attn_implementation)
        model.eval()
        return cls(model, tokenizer, **kwargs)

    # -- backend ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.model.parameters()).device

    def score_padded(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Rewards of one right-padded batch: (b, L) int64 ids and mask -> (b,) float32."""
        from rewardmodel.ml.modeling import compute_rewards

        device = self.device
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.bf16 and device.type == "cuda"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            ids = torch.from_numpy(input_ids).to(device, non_blocking=True)
            mask = torch.from_numpy(attention_mask).to(device, non_blocking=True)
            return compute_rewards(self.model, ids, mask).cpu().numpy().astype(np.float32)

    @property
    def encoding_key(self) -> str:
        """:func:`encoding_key` of this scorer's tokenisation (computed once)."""
        if self._encoding_key is None:
            self._encoding_key = encoding_key(self.tokenizer, self.encoder)
        return self._encoding_key

    # -- public API ------------------------------------------------------------------------------
    def score_token_ids(self, sequences: Sequence[np.ndarray | Sequence[int]]) -> np.ndarray:
        """Rewards of already tokenised sequences, in input order: N sequences -> (N,) float32."""
        if self.model is not None and hasattr(self.model, "eval"):
            self.model.eval()
        out = np.empty(len(sequences), dtype=np.float32)
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        pad_id = self.tokenizer.pad_token_id
        for idx in length_sorted_batches(lengths, self.batch_size, self.max_batch_tokens):
            ids, mask = pad_batch([sequences[i] for i in idx], pad_id, self.pad_to_multiple_of)
            out[idx] = self.score_padded(ids, mask)
        return out

    def score(self, prompts: Sequence[str | Sequence[Message]], responses: Sequence[str]) -> np.ndarray:
        """Rewards r(x_i, y_i) of N (conversation, response) pairs, in input order: (N,) float32."""
        return self.score_token_ids(self.encoder.encode(prompts, responses))

    def score_pairs(self, records: Sequence[Record]) -> dict[str, np.ndarray]:
        """Score preference records.

        Returns ``{"r_chosen": (N,) float32, "r_rejected": (N,) float32, "p": (N,) float64}`` in input order, with
        ``p = sigmoid(r_chosen - r_rejected)`` the model's probability of agreeing with the label.
        """
        n = len(records)
        if n == 0:
            empty = np.zeros(0, dtype=np.float32)
            return {"r_chosen": empty, "r_rejected": empty, "p": np.zeros(0)}
        prompts = [r["prompt"] for r in records]
        seqs = ENCODINGS.encode(
            self.encoding_key,
            self.encoder,
            prompts + prompts,
            [r["chosen"] for r in records] + [r["rejected"] for r in records],
        )
        rewards = self.score_token_ids(seqs)
        rc, rr = rewards[:n], rewards[n:]
        return {"r_chosen": rc, "r_rejected": rr, "p": sigmoid(rc.astype(np.float64) - rr)}

    def score_file(
        self,
        input_path: str | os.PathLike[str],
        output_path: str | os.PathLike[str],
        *,
        chunk_size: int = 20_000,
        resume: bool = True,
        progress: Callable[[int], bool | None] | None = None,
    ) -> dict[str, Any]:
        """Stream pairs from a JSONL file to a JSONL file of scores, ``chunk_size`` records at a time.

        Each output line is ``{"id", "subset", "r_chosen", "r_rejected", "p"}`` (``id`` / ``subset`` copied when
        present, else ``id`` is the 0-based line index), in input order. Memory is bounded by the chunk size.

        With ``resume=True`` an existing output is continued: its complete lines are kept (a torn last line is
        cut) and that many input records are skipped, so a killed job restarts where it stopped.
        ``progress(n_done)`` is called after each chunk; returning False stops with :class:`ScoringCancelled`.

        Returns ``{"n": pairs in the output, "n_scored": pairs scored by this call, "accuracy": fraction with
        p > 0.5 over this call's pairs (NaN if none)}``.
        """
        output_path = Path(output_path)
        done = _complete_lines(output_path) if resume else 0
        mode = "a" if done else "w"
        n_scored = n_correct = 0
        records = read_jsonl(input_path)
        skipped = _skip(records, done)
        with open(output_path, mode, encoding="utf-8") as out:
            for chunk in iter_chunks(skipped, chunk_size):
                for j, r in enumerate(chunk):
                    validate_record(r, done + n_scored + j)
                s = self.score_pairs(chunk)
                lines = []
                for j, r in enumerate(chunk):
                    row = {
                        "id": r.get("id", done + n_scored + j),
                        "subset": r.get("subset"),
                        "r_chosen": float(s["r_chosen"][j]),
                        "r_rejected": float(s["r_rejected"][j]),
                        "p": float(s["p"][j]),
                    }
                    lines.append(json.dumps(row, ensure_ascii=False))
                out.write("\n".join(lines) + "\n")
                out.flush()
                n_scored += len(chunk)
                n_correct += int((s["p"] > 0.5).sum())
                if progress is not None and progress(done + n_scored) is False:
                    raise ScoringCancelled(f"scoring cancelled after {done + n_scored} pairs")
        return {
            "n": done + n_scored,
            "n_scored": n_scored,
            "accuracy": n_correct / n_scored if n_scored else float("nan"),
        }


class ServerTextFormatter:
    """The text a scoring server (vLLM ``/classify``, SGLang ``/classify``) must receive to score what :class:`Scorer`
    scores: the same chat template (or plain hh form) and the same truncation (response kept, conversation
    left-truncated, ``max_length`` clamped to the model's position limit), through the same
    :class:`~rewardmodel.ml.data.SequenceEncoder`. Only the tokenizer and ``config.json`` are loaded, never weights.

    Each sequence is tokenised and truncated here, then decoded back to text (``skip_special_tokens=False``), so the
    template's special tokens travel as text and the server's tokenizer maps them back to the same ids.
    ``server_adds_special_tokens``: the server tokenises with ``add_special_tokens=True`` (SGLang's ``/classify``
    does; vLLM's is sent ``add_special_tokens: false``), so the ids the tokenizer adds itself (BOS for Llama,
    ``[CLS]``/``[SEP]`` for BERT) are cut from the text, as the Skywork-Reward-V2 model card does for SGLang.
    """

    def __init__(self, tokenizer: Any, max_length: int, *, server_adds_special_tokens: bool = False) -> None:
        self.tokenizer = tokenizer
        self.encoder = SequenceEncoder(tokenizer, max_length)
        self.max_length = self.encoder.max_length
        self.strip: tuple[list[int], list[int]] = (
            _special_wrapping(tokenizer) if server_adds_special_tokens else ([], [])
        )

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str] | None,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        server_adds_special_tokens: bool = False,
    ) -> ServerTextFormatter:
        """Tokenizer and position limit of the checkpoint at ``path`` (None = packaged MiniLM); no weights."""
        from types import SimpleNamespace

        from transformers import AutoConfig

        from rewardmodel.ml.modeling import load_tokenizer, quiet_transformers, resolve_model_path

        tokenizer = load_tokenizer(path)
        with quiet_transformers():
            config = AutoConfig.from_pretrained(resolve_model_path(path))
        limit = model_position_limit(SimpleNamespace(config=config), tokenizer)
        return cls(
            tokenizer,
            min(max_length, limit) if limit else max_length,
            server_adds_special_tokens=server_adds_special_tokens,
        )

    def texts(self, prompts: Sequence[str | Sequence[Message]], responses: Sequence[str]) -> list[str]:
        """The server text of each (prompt_i, response_i), in input order."""
        head, tail = self.strip
        out: list[str] = []
        for ids in self.encoder.encode(prompts, responses):
            seq = [int(i) for i in ids]
            if head and seq[: len(head)] == head:
                seq = seq[len(head) :]
            if tail and seq[-len(tail) :] == tail:
                seq = seq[: -len(tail)]
            out.append(self.tokenizer.decode(seq, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        return out


def _complete_lines(path: Path) -> int:
    """Number of newline-terminated lines in ``path`` (0 if absent); a torn trailing line is truncated away."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(cut)
    return data[:cut].count(b"\n")


def _skip(records: Iterator[Record], n: int) -> Iterator[Record]:
    """Drop the first ``n`` records of an iterator."""
    for _ in range(n):
        if next(records, None) is None:
            break
    return records


def score_pairs(
    model_path: str | os.PathLike[str] | None, records: Sequence[Record], **kwargs: Any
) -> dict[str, np.ndarray]:
    """One-shot: load ``model_path`` and :meth:`Scorer.score_pairs` the records (use a Scorer for repeated calls)."""
    return Scorer.from_pretrained(model_path, **kwargs).score_pairs(records)


def score_file(
    model_path: str | os.PathLike[str] | None,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    chunk_size: int = 20_000,
    resume: bool = True,
    progress: Callable[[int], bool | None] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """One-shot: load ``model_path`` and :meth:`Scorer.score_file` (``kwargs`` go to ``Scorer.from_pretrained``)."""
    scorer = Scorer.from_pretrained(model_path, **kwargs)
    return scorer.score_file(input_path, output_path, chunk_size=chunk_size, resume=resume, progress=progress)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: score a JSONL file of pairs into a JSONL file of rewards."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint dir (default: packaged MiniLM)")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-batch-tokens", type=int, default=16384)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--dtype", default=None, choices=[None, "float32", "bfloat16"])
    args = parser.parse_args(argv)
    summary = score_file(
        args.model,
        args.input,
        args.output,
        chunk_size=args.chunk_size,
        dtype=args.dtype,
        max_length=args.max_length,
        batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
        progress=lambda n: print(json.dumps({"scored": n}), flush=True) and None,
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
