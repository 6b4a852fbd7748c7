"""Conversation parsing, tokenisation with truncation, the pair collator and the length-grouped sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rewardmodel.ml.data import (
    LengthGroupedBatchSampler,
    PreferenceCollator,
    SequenceEncoder,
    conversation_text,
    encode_conversation,
    load_records,
    pad_batch,
    parse_hh_prompt,
    to_messages,
    tokenize_records,
)
from rewardmodel.ml.modeling import load_tokenizer

HH = "\n\nHuman: hi there\n\nAssistant: hello, how can I help?\n\nHuman: how do I boil an egg?\n\nAssistant:"


def test_parses_hh_transcript_into_messages() -> None:
    assert parse_hh_prompt(HH) == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "hello, how can I help?"},
        {"role": "user", "content": "how do I boil an egg?"},
    ]


def test_parse_accepts_missing_leading_newlines_and_plain_text() -> None:
    assert parse_hh_prompt("Human: hi\n\nAssistant:") == [{"role": "user", "content": "hi"}]
    assert parse_hh_prompt("just a question") == [{"role": "user", "content": "just a question"}]


def test_message_lists_pass_through_and_bad_ones_are_rejected() -> None:
    msgs = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]
    assert to_messages(msgs) == msgs
    with pytest.raises(ValueError):
        to_messages([{"content": "no role"}])


def test_conversation_text_puts_sorted_attributes_first() -> None:
    text = conversation_text(HH, {"objectivity": "factual", "desired": ["accuracy", "safety"]})
    assert text.splitlines()[:2] == ["desired: accuracy, safety", "objectivity: factual"]
    assert text.endswith("Human: how do I boil an egg?")


def test_load_records_names_the_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": "a"}\n')
    with pytest.raises(ValueError, match="record 1: missing key 'rejected'"):
        load_records(path)


def test_plain_form_wraps_special_tokens_and_keeps_full_text(tiny_bert: Path) -> None:
    tok = load_tokenizer(tiny_bert)
    ids = encode_conversation(tok, HH, "boil it for ten minutes", max_length=200)
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    text = tok.decode(ids, skip_special_tokens=True)
    assert text.startswith("human : hi there")
    assert text.endswith("assistant : boil it for ten minutes")


def test_truncation_keeps_the_response_and_the_end_of_the_conversation(tiny_bert: Path) -> None:
    tok = load_tokenizer(tiny_bert)
    full = encode_conversation(tok, HH, "boil it for ten minutes", max_length=200)
    short = encode_conversation(tok, HH, "boil it for ten minutes", max_length=16)
    assert len(short) == 16
    assert short[0] == tok.cls_token_id and short[-1] == tok.sep_token_id
    # the 14 body tokens are the last 14 body tokens of the untruncated sequence: conversation cut from the left
    assert short[1:-1].tolist() == full[1:-1][-14:].tolist()
    assert tok.decode(short, skip_special_tokens=True).endswith("boil it for ten minutes")


def test_overlong_response_keeps_its_head_and_drops_the_conversation(tiny_bert: Path) -> None:
    tok = load_tokenizer(tiny_bert)
    response = " ".join(["sure"] * 10 + ["really"] * 40)
    ids = encode_conversation(tok, HH, response, max_length=12)
    assert len(ids) == 12
    assert tok.decode(ids, skip_special_tokens=True) == " ".join(["sure"] * 10)


def test_decoder_uses_its_chat_template_and_gets_eos_as_pad(tiny_qwen: Path) -> None:
    tok = load_tokenizer(tiny_qwen)
    assert tok.pad_token == tok.eos_token == "<|im_end|>"
    assert tok.padding_side == "right"
    ids = encode_conversation(tok, HH, "boil it", max_length=512)
    assert tok.decode(ids) == (
        "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\nhello, how can I help?<|im_end|>\n"
        "<|im_start|>user\nhow do I boil an egg?<|im_end|>\n<|im_start|>assistant\nboil it<|im_end|>\n"
    )
    short = encode_conversation(tok, HH, "boil it", max_length=12)
    assert len(short) == 12 and tok.decode(short).endswith("<|im_start|>assistant\nboil it<|im_end|>\n")


def test_decoder_without_template_uses_plain_form(tiny_llama: Path) -> None:
    tok = load_tokenizer(tiny_llama)
    text = tok.decode(encode_conversation(tok, HH, "boil it", max_length=512))
    assert text.endswith("Human: how do I boil an egg?\n\nAssistant: boil it")


def test_message_list_and_hh_string_encode_identically(tiny_qwen: Path) -> None:
    tok = load_tokenizer(tiny_qwen)
    enc = SequenceEncoder(tok, 256)
    a, b = enc.encode([HH, parse_hh_prompt(HH)], ["x", "x"])
    assert a.tolist() == b.tolist()


def _features(n: int, lengths_c: list[int], lengths_r: list[int]) -> list[dict[str, Any]]:
    return [
        {"chosen_input_ids": [10 + i] * lengths_c[i], "rejected_input_ids": [50 + i] * lengths_r[i], "margin": i * 0.5}
        for i in range(n)
    ]


def test_collator_puts_chosen_first_then_rejected_right_padded() -> None:
    batch = PreferenceCollator(pad_token_id=0)(_features(3, [2, 5, 3], [4, 1, 6]))
    assert batch["input_ids"].shape == (6, 6) and batch["attention_mask"].shape == (6, 6)
    assert batch["input_ids"][:, 0].tolist() == [10, 11, 12, 50, 51, 52]
    assert batch["input_ids"][0].tolist() == [10, 10, 0, 0, 0, 0]
    assert batch["attention_mask"].sum(1).tolist() == [2, 5, 3, 4, 1, 6]
    assert batch["margin"].tolist() == [0.0, 0.5, 1.0]
    assert batch["input_ids"].dtype == torch.int64


def test_collator_pads_to_multiple() -> None:
    batch = PreferenceCollator(pad_token_id=0, pad_to_multiple_of=8)(_features(2, [3, 9], [2, 2]))
    assert batch["input_ids"].shape == (4, 16)


def test_pad_batch_handles_empty_input() -> None:
    ids, mask = pad_batch([], 0)
    assert ids.shape == (0, 0) and mask.shape == (0, 0)


def test_sampler_covers_every_index_once_and_groups_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1000)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=8, seed=3, mega_batch_mult=10)
    batches = sampler.batches(epoch=0)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert max(lengths[b].max() for b in batches) == lengths[batches[0]].max()  # longest batch first
    padding = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
    random_batches = LengthGroupedBatchSampler(lengths, 8, seed=3, group_by_length=False).batches(0)
    random_padding = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in random_batches)
    assert padding < 0.25 * random_padding


def test_sampler_is_deterministic_per_epoch_and_reshuffles_across_epochs() -> None:
    sampler = LengthGroupedBatchSampler(np.arange(100), batch_size=4, seed=1)
    assert sampler.batches(0) == LengthGroupedBatchSampler(np.arange(100), batch_size=4, seed=1).batches(0)
    assert sampler.batches(0) != sampler.batches(1)


def test_tokenize_records_keeps_order_subsets_and_margins(tiny_bert: Path, records: list[dict[str, Any]]) -> None:
    tok = load_tokenizer(tiny_bert)
    recs = [dict(r, margin=1.5) if i == 1 else r for i, r in enumerate(records[:5])]
    pairs = tokenize_records(recs, tok, max_length=64, chunk_size=2)
    assert len(pairs) == 5 and pairs.subsets == [r["subset"] for r in recs]
    assert pairs.margins.tolist() == [0.0, 1.5, 0.0, 0.0, 0.0]
    one = encode_conversation(tok, recs[3]["prompt"], recs[3]["rejected"], 64)
    assert pairs.rejected[3].tolist() == one.tolist()
