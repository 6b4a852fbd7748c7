"""Records, conversation formatting, tokenisation with truncation, the pair collator and a length-grouped sampler.

Records are plain dicts (never querysets)::

    {"prompt": "\\n\\nHuman: ...\\n\\nAssistant:"  # hh-rlhf transcript, or a list of {"role", "content"}
     "chosen": "...", "rejected": "...",          # final assistant responses
     "subset": "tldr",                            # optional, used for per-subset metrics
     "margin": 0.5,                               # optional, only with RewardTrainingConfig.use_margin
     "id": "..."}                                 # optional, copied to scoring output

A sequence is (conversation x, response y) rendered with the tokenizer's chat template when it has one (the
response becomes the last assistant turn), else in the plain hh form ``"Human: ...\\n\\nAssistant: <response>"``
wrapped in the tokenizer's own special tokens (``[CLS] ... [SEP]`` for BERT, BOS for Llama).

Truncation to ``max_length`` tokens (see :meth:`SequenceEncoder.truncate`): the response is kept whole and the
conversation is left-truncated, so the *end* of the conversation (the turn being answered) survives. If the response
alone is longer than the budget, its head is kept and the conversation is dropped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Message = dict[str, str]
Record = dict[str, Any]

_HH_MARKER = re.compile(r"\n\n(Human|Assistant|System):")
_ROLE_OF = {"Human": "user", "Assistant": "assistant", "System": "system"}
_PLAIN_NAME = {"user": "Human", "assistant": "Assistant", "system": "System"}


# ---------------------------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------------------------
def parse_hh_prompt(text: str) -> list[Message]:
    """Parse an hh-rlhf transcript into chat messages.

    ``"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: why?\\n\\nAssistant:"`` ->
    ``[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "why?"}]``.

    Contract: markers are ``"\\n\\nHuman:"``, ``"\\n\\nAssistant:"`` and ``"\\n\\nSystem:"`` (a leading marker without
    the newlines is accepted too); contents are whitespace-stripped; the trailing empty ``Assistant:`` turn (the
    turn being judged) is dropped; text before the first marker becomes a user turn; a transcript with no marker at
    all is one user message. Empty turns other than the last are kept (as empty strings) so turn order survives.
    """
    if not text.startswith("\n\n"):
        for name in _ROLE_OF:
            if text.startswith(f"{name}:"):
                text = "\n\n" + text
                break
    parts = _HH_MARKER.split(text)
    messages: list[Message] = []
    head = parts[0].strip()
    if head:
        messages.append({"role": "user", "content": head})
    for i in range(1, len(parts), 2):
        messages.append({"role": _ROLE_OF[parts[i]], "content": parts[i + 1].strip()})
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return messages


def to_messages(prompt: str | Sequence[Message]) -> list[Message]:
    """Normalise a record's ``prompt`` (hh string or list of ``{role, content}``) into a list of messages."""
    if isinstance(prompt, str):
        return parse_hh_prompt(prompt)
    out: list[Message] = []
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"prompt message {i} must be a dict with 'role' and 'content'")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    return out


def plain_conversation_text(messages: Sequence[Message]) -> str:
    """The plain (no chat template) rendering of a conversation, ending with the open assistant turn.

    ``[{"user": "hi"}]`` -> ``"Human: hi\\n\\nAssistant:"``; the response is appended as ``" " + response``.
    """
    turns = [f"{_PLAIN_NAME.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in messages]
    turns.append("Assistant:")
    return "\n\n".join(turns)


def conversation_text(prompt: str | Sequence[Message], attributes: dict[str, Any] | None = None) -> str:
    """Readable text of a conversation plus optional attributes, for embedding (curation's retrieval key).

    Attributes (e.g. the five-attribute tuple) are rendered first as ``key: value`` lines, lists joined by ", ",
    keys sorted, so the same pair always gives the same text.
    """
    lines: list[str] = []
    for key in sorted(attributes or {}):
        value = (attributes or {})[key]
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{key}: {value}")
    body = "\n".join(f"{_PLAIN_NAME.get(m['role'], m['role'])}: {m['content']}" for m in to_messages(prompt))
    return "\n".join([*lines, body]) if lines else body


# ---------------------------------------------------------------------------------------------------------------
# Records and files
# ---------------------------------------------------------------------------------------------------------------
def validate_record(record: Any, index: int = 0) -> None:
    """Raise ValueError (naming the record index and key) unless ``record`` is a usable preference pair."""
    if not isinstance(record, dict):
        raise ValueError(f"record {index}: expected a dict, got {type(record).__name__}")
    for key in ("prompt", "chosen", "rejected"):
        if key not in record:
            raise ValueError(f"record {index}: missing key {key!r}")
    if not isinstance(record["prompt"], str | list):
        raise ValueError(f"record {index}: 'prompt' must be a string or a list of messages")
    for key in ("chosen", "rejected"):
        if not isinstance(record[key], str):
            raise ValueError(f"record {index}: {key!r} must be a string")


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Record]:
    """Yield one dict per non-empty line of a JSONL file (streaming; constant memory)."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from exc


def iter_chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """Group an iterable of records into lists of at most ``size`` (the last one may be shorter)."""
    chunk: list[Record] = []
    for r in records:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_records(source: str | os.PathLike[str] | Iterable[Record] | None) -> list[Record]:
    """Materialise records from a JSONL path or an iterable of dicts, validating each one. None -> []."""
    if source is None:
        return []
    records = list(read_jsonl(source)) if isinstance(source, str | os.PathLike) else list(source)
    for i, r in enumerate(records):
        validate_record(r, i)
    return records


# ---------------------------------------------------------------------------------------------------------------
# Tokenisation
# ---------------------------------------------------------------------------------------------------------------
def prepare_tokenizer(tokenizer: Any) -> Any:
    """Make a tokenizer usable for reward modelling, in place, and return it.

    * pad token: when missing, the EOS token is used (then UNK, then a new ``<|pad|>`` token, in which case the
      model's embeddings must be resized: :func:`rewardmodel.ml.modeling.load_reward_model` does that);
    * padding side: **right**, for encoders and decoders alike. Decoders derive position ids from the sequence
      start, so left padding would shift positions; causal attention means trailing pads never affect real tokens,
      and transformers' sequence-classification heads pool at the rightmost non-pad token.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
        else:
            tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    tokenizer.padding_side = "right"
    return tokenizer


def has_chat_template(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template (then it is used to render conversations)."""
    return bool(getattr(tokenizer, "chat_template", None))


@dataclass
class TokenizedPairs:
    """Token ids of N pairs: ``chosen[i]`` / ``rejected[i]`` are int32 arrays of at most ``max_length`` ids."""

    chosen: list[np.ndarray]
    rejected: list[np.ndarray]
    margins: np.ndarray  # (N,) float32, zeros when the records have none
    subsets: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.chosen)

    def lengths(self) -> np.ndarray:
        """(N,) int64: the longer of the two sequence lengths per pair (the sampler's sort key)."""
        return np.array([max(len(c), len(r)) for c, r in zip(self.chosen, self.rejected, strict=True)], dtype=np.int64)

    def feature(self, i: int) -> dict[str, Any]:
        """The collator input for pair ``i``."""
        return {
            "chosen_input_ids": self.chosen[i],
            "rejected_input_ids": self.rejected[i],
            "margin": float(self.margins[i]),
        }


class SequenceEncoder:
    """Turns (conversation, response) into token ids of at most ``max_length``, keeping the response.

    Rendering: with a chat template, ``full = template(messages + [assistant: response])`` and
    ``conv = template(messages, add_generation_prompt=True)``; the response part is ``full`` after the longest
    common character prefix of the two (for templates such as Qwen3's that insert think tags, the split still falls
    after ``<|im_start|>assistant\\n``). The two parts are tokenised separately without extra special tokens (the
    template text carries them). Without a template, the plain hh form is used and the tokenizer's own special
    tokens (found by probing ``tokenizer("a")``) are put around the truncated ids.
    """

    def __init__(self, tokenizer: Any, max_length: int, use_chat_template: bool | None = None) -> None:
        """``use_chat_template=None`` means "when the tokenizer has one"."""
        self.tokenizer = tokenizer
        self.use_chat_template = has_chat_template(tokenizer) if use_chat_template is None else use_chat_template
        if self.use_chat_template:
            self.prefix: list[int] = []
            self.suffix: list[int] = []
        else:
            self.prefix, self.suffix = _special_wrapping(tokenizer)
        self.max_length = int(max_length)
        # We tokenise without truncation and truncate ourselves (keeping the response); mark transformers'
        # "sequence longer than model_max_length" warning as already given.
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True
        if self.max_length <= len(self.prefix) + len(self.suffix):
            raise ValueError(f"max_length {max_length} leaves no room for tokens")

    # -- text ------------------------------------------------------------------------------------
    def split_texts(self, messages: Sequence[Message], response: str) -> tuple[str, str]:
        """Render (conversation part, response part) as text; their concatenation is the whole sequence."""
        if self.use_chat_template:
            conv = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            full = self.tokenizer.apply_chat_template(
                [*messages, {"role": "assistant", "content": response}], tokenize=False
            )
            cut = len(os.path.commonprefix([conv, full]))
            return full[:cut], full[cut:]
        return plain_conversation_text(messages), " " + response

    # -- ids -------------------------------------------------------------------------------------
    def truncate(self, conv_ids: Sequence[int], resp_ids: Sequence[int]) -> np.ndarray:
        """Combine conversation and response ids under ``max_length``.

        budget = max_length - (special tokens). If len(resp) >= budget: ``resp[:budget]`` (head of the response, no
        conversation). Else ``conv[-(budget - len(resp)):] + resp`` (conversation left-truncated). Returns int32 (L,).
        """
        budget = self.max_length - len(self.prefix) - len(self.suffix)
        if len(resp_ids) >= budget:
            body = list(resp_ids[:budget])
        else:
            keep = budget - len(resp_ids)
            body = list(conv_ids[-keep:] if keep < len(conv_ids) else conv_ids) + list(resp_ids)
        return np.asarray(self.prefix + body + self.suffix, dtype=np.int32)

    def encode(self, prompts: Sequence[str | Sequence[Message]], responses: Sequence[str]) -> list[np.ndarray]:
        """Token ids for each (prompt_i, response_i); one batched tokenizer call per part. Returns N int32 arrays."""
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses differ in length")
        convs: list[str] = []
        resps: list[str] = []
        cache: dict[int, list[Message]] = {}
        for p, r in zip(prompts, responses, strict=True):
            key = id(p)
            if key not in cache:
                cache[key] = to_messages(p)
            c, rt = self.split_texts(cache[key], r)
            convs.append(c)
            resps.append(rt)
        uniq = list(dict.fromkeys(convs))
        conv_ids = dict(zip(uniq, self._tokenize(uniq), strict=True))
        resp_ids = self._tokenize(resps)
        return [self.truncate(conv_ids[c], rid) for c, rid in zip(convs, resp_ids, strict=True)]

    def encode_pairs(self, records: Sequence[Record]) -> TokenizedPairs:
        """Tokenise records into chosen / rejected id arrays (plus margins and subsets)."""
        prompts = [r["prompt"] for r in records]
        ids = self.encode(prompts + prompts, [r["chosen"] for r in records] + [r["rejected"] for r in records])
        n = len(records)
        margins = np.array([float(r.get("margin") or 0.0) for r in records], dtype=np.float32)
        return TokenizedPairs(ids[:n], ids[n:], margins, [r.get("subset") for r in records])

    def _tokenize(self, texts: list[str]) -> list[list[int]]:
        """Batched tokenisation without special tokens or truncation."""
        if not texts:
            return []
        return list(self.tokenizer(texts, add_special_tokens=False)["input_ids"])


def encode_conversation(
    tokenizer: Any,
    prompt: str | Sequence[Message],
    response: str,
    max_length: int,
    use_chat_template: bool | None = None,
) -> np.ndarray:
    """Token ids (int32, at most ``max_length``) of one conversation + response; see :class:`SequenceEncoder`."""
    return SequenceEncoder(tokenizer, max_length, use_chat_template).encode([prompt], [response])[0]


def tokenize_records(
    records: Sequence[Record], tokenizer: Any, max_length: int, chunk_size: int = 2048
) -> TokenizedPairs:
    """Tokenise many records in chunks (bounded tokenizer batches). See :meth:`SequenceEncoder.encode_pairs`."""
    enc = SequenceEncoder(tokenizer, max_length)
    out = TokenizedPairs([], [], np.zeros(0, dtype=np.float32), [])
    margins: list[np.ndarray] = []
    for start in range(0, len(records), chunk_size):
        part = enc.encode_pairs(records[start : start + chunk_size])
        out.chosen.extend(part.chosen)
        out.rejected.extend(part.rejected)
        out.subsets.extend(part.subsets)
        margins.append(part.margins)
    out.margins = np.concatenate(margins) if margins else np.zeros(0, dtype=np.float32)
    return out


def _special_wrapping(tokenizer: Any) -> tuple[list[int], list[int]]:
    """(prefix, suffix) ids the tokenizer adds around a single sequence, found by probing with one word."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return list(full[:i]), list(full[i + len(bare) :])
    return [], []


# ---------------------------------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------------------------------
def pad_batch(
    sequences: Sequence[Sequence[int] | np.ndarray], pad_token_id: int, pad_to_multiple_of: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad sequences to the longest one (rounded up to ``pad_to_multiple_of`` when > 0).

    Returns ``(input_ids, attention_mask)``, both int64 numpy arrays of shape (N, L); mask is 1 on real tokens.
    """
    longest = max((len(s) for s in sequences), default=0)
    if pad_to_multiple_of > 0:
        longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    ids = np.full((len(sequences), longest), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return ids, mask


class PreferenceCollator:
    """Collate pair features into one batch: the B chosen sequences first, then the B rejected ones.

    Input: a list of B dicts with ``chosen_input_ids``, ``rejected_input_ids`` (int sequences) and optional
    ``margin``. Output (torch tensors):

    * ``input_ids``: (2B, L) int64, rows ``[0, B)`` chosen, rows ``[B, 2B)`` rejected (row ``B + i`` is the rejected
      response of pair ``i``), right-padded with ``pad_token_id`` to the longest of all 2B sequences;
    * ``attention_mask``: (2B, L) int64, 1 on real tokens;
    * ``margin``: (B,) float32 (zeros when absent).

    One forward pass then gives rewards ``r`` of shape (2B,), and ``r[:B]`` / ``r[B:]`` are chosen / rejected
    (TRL ``DataCollatorForPreference``).
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 0) -> None:
        """``pad_to_multiple_of`` > 0 rounds L up (tensor-core friendly shapes on GPU)."""
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = int(pad_to_multiple_of)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        seqs = [f["chosen_input_ids"] for f in features] + [f["rejected_input_ids"] for f in features]
        ids, mask = pad_batch(seqs, self.pad_token_id, self.pad_to_multiple_of)
        margin = np.array([float(f.get("margin") or 0.0) for f in features], dtype=np.float32)
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "margin": torch.from_numpy(margin),
        }


def last_real_token(sequence: Sequence[int] | np.ndarray, pad_token_id: int) -> int:
    """Index of the token a sequence's reward is read at: its rightmost token that is not ``pad_token_id`` (0 when
    every token is the pad id).

    The same rule as transformers' ``*ForSequenceClassification`` pooling on a right-padded batch, so the packed
    and the padded forward read the reward at the same token (when pad = EOS and a sequence ends with EOS, that is
    the token before it).
    """
    ids = np.asarray(sequence)
    real = np.flatnonzero(ids != pad_token_id)
    return int(real[-1]) if len(real) else 0


class PackedPreferenceCollator:
    """Padding-free collation: the 2B sequences of B pairs (chosen first, then rejected) concatenated into one row.

    Input: as :class:`PreferenceCollator`. Output (torch tensors, T = total tokens of the 2B sequences):

    * ``input_ids``: (1, T) int64, sequences back to back, no padding;
    * ``position_ids``: (1, T) int64, restarting at 0 at each sequence start: transformers reads the sequence
      boundaries from them (a block-diagonal causal mask for sdpa / eager / flex, varlen kernels for flash
      attention), and RoPE gets the same positions as in a padded batch;
    * ``reward_index``: (2B,) int64, the position in the row of each sequence's reward token
      (:func:`last_real_token`), entries ``[0, B)`` chosen and ``[B, 2B)`` rejected;
    * ``cu_seq_lens``: (S + 1,) int32 cumulative sequence starts (flash-attention's ``cu_seqlens``), S = 2B, or
      2B + 1 with a filler segment (below); ``max_length``: the longest segment, a Python int;
    * ``margin``: (B,) float32; ``num_tokens``: () int64, the real tokens (T without the filler).

    An empty sequence is given one pad token so that it still has a token to read (a padded batch reads such a row
    at its first pad token too). ``pad_to_multiple_of`` > 0 rounds T up with a filler segment of pad tokens whose
    positions restart at 0: it attends only to itself and no reward is read there.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int = 0) -> None:
        """``pad_to_multiple_of`` > 0 rounds the row length up (tensor-core friendly shapes on GPU)."""
        self.pad_token_id = int(pad_token_id)
        self.pad_to_multiple_of = int(pad_to_multiple_of)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """See the class docstring."""
        seqs = [np.asarray(f["chosen_input_ids"], dtype=np.int64) for f in features]
        seqs += [np.asarray(f["rejected_input_ids"], dtype=np.int64) for f in features]
        seqs = [s if len(s) else np.array([self.pad_token_id], dtype=np.int64) for s in seqs]
        lengths = [len(s) for s in seqs]
        starts = np.concatenate([[0], np.cumsum(lengths)])
        total = int(starts[-1])
        reward_index = [int(starts[i]) + last_real_token(s, self.pad_token_id) for i, s in enumerate(seqs)]
        parts, positions = list(seqs), [np.arange(n, dtype=np.int64) for n in lengths]
        if self.pad_to_multiple_of > 0 and total % self.pad_to_multiple_of:
            filler = self.pad_to_multiple_of - total % self.pad_to_multiple_of
            parts.append(np.full(filler, self.pad_token_id, dtype=np.int64))
            positions.append(np.arange(filler, dtype=np.int64))
            lengths.append(filler)
            starts = np.append(starts, total + filler)
        margin = np.array([float(f.get("margin") or 0.0) for f in features], dtype=np.float32)
        return {
            "input_ids": torch.from_numpy(np.concatenate(parts))[None],
            "position_ids": torch.from_numpy(np.concatenate(positions))[None],
            "reward_index": torch.tensor(reward_index, dtype=torch.int64),
            "cu_seq_lens": torch.from_numpy(starts.astype(np.int32)),
            "max_length": max(lengths),
            "margin": torch.from_numpy(margin),
            "num_tokens": torch.tensor(total, dtype=torch.int64),
        }


class LengthGroupedBatchSampler:
    """Seeded micro-batches of pair indices grouped by length, so padding stays small (HF ``LengthGroupedSampler``).

    For epoch ``e``: indices are shuffled with ``numpy.random.default_rng(seed + e)``, cut into mega-batches of
    ``batch_size * mega_batch_mult``, each mega-batch is sorted by length (longest first) and cut into batches of
    ``batch_size``; the batches are shuffled and the one with the longest sequence moved first (an out-of-memory
    shows at step 1, not hours later). ``group_by_length=False`` gives plain shuffled batches. The same
    (seed, epoch) always gives the same batches, which is what makes resuming mid-epoch exact.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        seed: int = 0,
        group_by_length: bool = True,
        mega_batch_mult: int = 50,
    ) -> None:
        """``lengths``: (N,) sort key per pair (e.g. ``TokenizedPairs.lengths()``)."""
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.group_by_length = group_by_length
        self.mega_batch_mult = int(mega_batch_mult)

    def __len__(self) -> int:
        """Batches per epoch (the last batch of each mega-batch may be short)."""
        n = len(self.lengths)
        if not self.group_by_length:
            return -(-n // self.batch_size)
        mega = self.batch_size * self.mega_batch_mult
        full, rest = divmod(n, mega)
        return full * -(-mega // self.batch_size) + -(-rest // self.batch_size)

    def batches(self, epoch: int = 0) -> list[list[int]]:
        """The list of batches (lists of indices) of one epoch; every index appears exactly once."""
        rng = np.random.default_rng(self.seed + epoch)
        perm = rng.permutation(len(self.lengths))
        if not self.group_by_length:
            return [perm[i : i + self.batch_size].tolist() for i in range(0, len(perm), self.batch_size)]
        mega = self.batch_size * self.mega_batch_mult
        batches: list[list[int]] = []
        for start in range(0, len(perm), mega):
            group = perm[start : start + mega]
            group = group[np.argsort(-self.lengths[group], kind="stable")]
            batches.extend(group[i : i + self.batch_size].tolist() for i in range(0, len(group), self.batch_size))
        order = rng.permutation(len(batches))
        batches = [batches[i] for i in order]
        if batches:
            longest = int(np.argmax([self.lengths[b].max() for b in batches]))
            batches[0], batches[longest] = batches[longest], batches[0]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        """Iterate the batches of epoch 0 (use :meth:`batches` for other epochs)."""
        return iter(self.batches(0))
