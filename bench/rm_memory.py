"""Memory model of reward-model training per GPU: parameters, gradients and optimizer states for Qwen3-0.6B/4B/8B
(and Llama-3.1-8B, the paper's largest) under DDP, DeepSpeed ZeRO-1/2/3 and our FSDP2 path, plus activations of a
16K-token pair with and without gradient checkpointing. Nothing is downloaded and no GPU is needed.

    .venv/bin/python bench/rm_memory.py                 # tables for 8 GPUs (1 node) and 64 GPUs (8 nodes)
    .venv/bin/python bench/rm_memory.py --gpus 8 --json

Parameter counts come from the models' published config values (hidden, layers, heads, KV heads, head dim, MLP,
vocab) for ``*ForSequenceClassification`` (embeddings + blocks + final norm + a 1-output score head; no LM head).
With transformers installed each count is checked against the real class built on the meta device (no memory).

Bytes per parameter (Psi = parameters, N = data-parallel GPUs):

* DDP (our loop: fp32 master weights, bf16 autocast): weights 4 Psi, grads 4 Psi, AdamW m+v 8 Psi, all on every GPU.
* ZeRO (DeepSpeed bf16, as in the ZeRO paper with K=12): weights 2 Psi, grads 2 Psi, fp32 master + m + v 12 Psi;
  stage 1 shards the 12 Psi, stage 2 also the grads, stage 3 also the weights.
* FSDP2 (ours, ``parallelism="fsdp"``, fp32 sharded weights + autocast): 4/4/8 Psi, all divided by N. With
  ``model_dtype="bfloat16"`` (pure bf16; AdamW states in bf16 too): 2/2/4 Psi divided by N.

Not counted in the state columns: the gathered (unsharded) weights of the one or two blocks FSDP/ZeRO-3 hold during
a block's forward/backward, communication buckets, the CUDA context (~0.5-1 GB) and allocator fragmentation.

Activations of one micro-batch of one pair at sequence length T (chosen + rejected: 2T tokens), bf16:
* with gradient checkpointing: the input of every block is kept (L * 2T * h * 2 bytes) plus one block's working set
  while it is recomputed (QKV/attention output ~ 2T * (2h + 2*kv*d) * 2, MLP ~ 2T * 3 * i * 2, SDPA's flash or
  memory-efficient kernel needs O(T) extra, no T x T matrix);
* without: every block keeps its intermediate tensors, about 34 * h bytes per token per block (Korthikanti et al.,
  2022, with flash attention: no 5*a*T^2 term); an estimate for GPT-style MLPs, low for Qwen3's wider SwiGLU.
Eager attention would add 2T/2 * heads * T * (2+2) bytes per block (scores + probabilities per sequence), which is
why 16K training needs SDPA (or flash-attention) and checkpointing.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Shape:
    """The config values that fix a decoder's parameter count (as in the model's config.json)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    qk_norm: bool = True  # Qwen3 normalises q and k per head (2 * head_dim weights per block)
    arch: str = "qwen3"


SHAPES = [
    Shape("Qwen3-0.6B", hidden=1024, layers=28, heads=16, kv_heads=8, head_dim=128, intermediate=3072, vocab=151936),
    Shape("Qwen3-4B", hidden=2560, layers=36, heads=32, kv_heads=8, head_dim=128, intermediate=9728, vocab=151936),
    Shape("Qwen3-8B", hidden=4096, layers=36, heads=32, kv_heads=8, head_dim=128, intermediate=12288, vocab=151936),
    Shape(
        "Llama-3.1-8B",
        hidden=4096,
        layers=32,
        heads=32,
        kv_heads=8,
        head_dim=128,
        intermediate=14336,
        vocab=128256,
        qk_norm=False,
        arch="llama",
    ),
]

# (strategy, bytes/param for weights, grads, optimizer states, which of them are divided by N)
STRATEGIES: list[tuple[str, float, float, float, str]] = [
    ("DDP (ours, fp32 + autocast)", 4, 4, 8, ""),
    ("ZeRO-1 (DeepSpeed bf16)", 2, 2, 12, "o"),
    ("ZeRO-2 (DeepSpeed bf16)", 2, 2, 12, "go"),
    ("ZeRO-3 (DeepSpeed bf16)", 2, 2, 12, "pgo"),
    ("FSDP2 (ours, fp32 + autocast)", 4, 4, 8, "pgo"),
    ("FSDP2 (ours, pure bf16)", 2, 2, 4, "pgo"),
]


def parameter_count(s: Shape) -> int:
    """Parameters of ``<Arch>ForSequenceClassification`` with one output (no biases, untied: no LM head)."""
    attn = s.hidden * s.heads * s.head_dim * 2 + s.hidden * s.kv_heads * s.head_dim * 2  # q, o and k, v
    if s.qk_norm:
        attn += 2 * s.head_dim
    mlp = 3 * s.hidden * s.intermediate
    block = attn + mlp + 2 * s.hidden  # two RMSNorms
    return s.vocab * s.hidden + s.layers * block + s.hidden + s.hidden  # embeddings, blocks, final norm, score


def parameter_count_from_transformers(s: Shape) -> int | None:
    """The same count from the real class on the meta device (None without transformers)."""
    try:
        import torch
        from transformers import (
            LlamaConfig,
            LlamaForSequenceClassification,
            Qwen3Config,
            Qwen3ForSequenceClassification,
        )
    except ImportError:
        return None
    kwargs: dict[str, Any] = {
        "hidden_size": s.hidden,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads,
        "head_dim": s.head_dim,
        "intermediate_size": s.intermediate,
        "vocab_size": s.vocab,
        "num_labels": 1,
    }
    cls, cfg = (
        (Qwen3ForSequenceClassification, Qwen3Config(**kwargs))
        if s.arch == "qwen3"
        else (LlamaForSequenceClassification, LlamaConfig(**kwargs))
    )
    with torch.device("meta"):
        model = cls(cfg)
    return sum(p.numel() for p in model.parameters())


def states_per_gpu(psi: int, gpus: int) -> list[dict[str, Any]]:
    """Per-GPU GiB of weights, grads and optimizer states under each strategy."""
    rows = []
    for name, p, g, o, sharded in STRATEGIES:
        w = psi * p / (gpus if "p" in sharded else 1)
        gr = psi * g / (gpus if "g" in sharded else 1)
        op = psi * o / (gpus if "o" in sharded else 1)
        rows.append(
            {
                "strategy": name,
                "weights_gib": w / GIB,
                "grads_gib": gr / GIB,
                "optimizer_gib": op / GIB,
                "total_gib": (w + gr + op) / GIB,
            }
        )
    return rows


def activations_gib(s: Shape, seq_len: int, checkpointing: bool) -> float:
    """Activation memory (GiB) of one pair (2 * seq_len tokens) through the model, bf16, SDPA attention."""
    tokens = 2 * seq_len
    kv = s.kv_heads * s.head_dim
    if checkpointing:
        boundaries = s.layers * tokens * s.hidden * 2
        attn = tokens * (2 * s.hidden + 2 * kv) * 2 * 2  # q, k, v, attention output (+ their grads)
        mlp = tokens * 3 * s.intermediate * 2 * 2  # gate, up, act (+ grads)
        return (boundaries + attn + mlp) / GIB
    return s.layers * 34 * s.hidden * tokens / GIB


def eager_attention_extra_gib(s: Shape, seq_len: int) -> float:
    """What eager attention adds per block for one pair: scores and probabilities (bf16) of both sequences."""
    return 2 * s.heads * seq_len * seq_len * 2 * 2 / GIB


def main() -> None:
    """Print the tables (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, nargs="*", default=[8, 64])
    parser.add_argument("--seq-len", type=int, default=16384)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"models": []}
    for s in SHAPES:
        psi = parameter_count(s)
        checked = parameter_count_from_transformers(s)
        if checked is not None and checked != psi:
            raise SystemExit(f"{s.name}: formula {psi} != transformers {checked}")
        out["models"].append(
            {
                **asdict(s),
                "parameters": psi,
                "checked_against_transformers": checked is not None,
                "per_gpu": {str(n): states_per_gpu(psi, n) for n in args.gpus},
                "activations_gib": {
                    "checkpointing": activations_gib(s, args.seq_len, True),
                    "no_checkpointing": activations_gib(s, args.seq_len, False),
                    "eager_attention_extra_per_block": eager_attention_extra_gib(s, args.seq_len),
                },
            }
        )
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for n in args.gpus:
        print(f"\nPer-GPU memory of model states, {n} GPUs (GiB; weights / grads / optimizer = total)")
        header = "| strategy | " + " | ".join(m["name"] for m in out["models"]) + " |"
        print(header)
        print("|" + "---|" * (len(out["models"]) + 1))
        for i, (name, *_rest) in enumerate(STRATEGIES):
            cells = []
            for m in out["models"]:
                r = m["per_gpu"][str(n)][i]
                cells.append(
                    f"{r['weights_gib']:.1f} / {r['grads_gib']:.1f} / {r['optimizer_gib']:.1f} = {r['total_gib']:.1f}"
                )
            print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nParameters and activations of one pair at {args.seq_len} tokens per response (GiB, bf16, SDPA)")
    print("| model | parameters | checked | activations, checkpointing | without | eager attention, extra per block |")
    print("|---|---|---|---|---|---|")
    for m in out["models"]:
        a = m["activations_gib"]
        print(
            f"| {m['name']} | {m['parameters'] / 1e9:.3f} B | {'yes' if m['checked_against_transformers'] else 'no'} "
            f"| {a['checkpointing']:.1f} | {a['no_checkpointing']:.1f} | {a['eager_attention_extra_per_block']:.1f} |"
        )


if __name__ == "__main__":
    main()
