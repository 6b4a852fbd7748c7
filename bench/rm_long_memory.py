"""Benchmark (GPU): measured peak memory and step time of one 16K-token pair (chosen 16,384 + rejected 12,288 tokens)
through a Qwen3-0.6B-shaped reward model: fp32 weights + bf16 autocast + AdamW (our loop's precision), gradient
checkpointing, padded (sdpa) against padding-free rows (flex attention; flash_attention_2 when flash-attn is
installed). Exits cleanly (status 0) without CUDA.

    .venv/bin/python bench/rm_long_memory.py                       # on a CUDA machine (~1-2 min)
    .venv/bin/python bench/rm_long_memory.py --shape qwen3-4b      # 60 GiB of model states: an 80 GB+ card
    .venv/bin/python bench/rm_long_memory.py --smoke               # tiny shapes on CPU: checks the script runs

Each variant: a fresh model (random weights from the config; nothing downloaded), ``--steps`` optimizer steps of
that one pair (forward, Bradley-Terry loss, backward, AdamW), peak ``torch.cuda.max_memory_allocated`` over the
steps and the median step time after the first. Compare with the memory model in docs/training.md (model states
8.9 GiB + ~3.4 GiB activations predicted for 0.6B with checkpointing). One JSON line per variant.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SHAPES: dict[str, dict[str, Any]] = {
    "qwen3-0.6b": {},
    "qwen3-4b": {
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
    },
}


def main() -> int:
    """Run each variant; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen3-0.6b")
    parser.add_argument("--chosen-tokens", type=int, default=16384)
    parser.add_argument("--rejected-tokens", type=int, default=12288)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-checkpointing", action="store_true", help="measure without gradient checkpointing")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, to check the script")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("rm_long_memory: CUDA is not available; skipping (nothing was measured).")
        return 0
    from rm_gpu import QWEN3_06B, SMOKE
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    from rewardmodel.ml.backbones import build_bpe_tokenizer, save_random_model
    from rewardmodel.ml.data import PackedPreferenceCollator, PreferenceCollator
    from rewardmodel.ml.loss import bt_loss
    from rewardmodel.ml.modeling import compute_rewards, compute_rewards_packed, load_reward_model

    cuda = torch.cuda.is_available() and not args.smoke
    device = torch.device("cuda" if cuda else "cpu")
    if args.smoke:
        args.chosen_tokens, args.rejected_tokens, args.steps = 256, 192, 2
    shape = {**(SMOKE if args.smoke else QWEN3_06B), **({} if args.smoke else SHAPES[args.shape])}
    shape["max_position_embeddings"] = max(shape["max_position_embeddings"], args.chosen_tokens)
    work = Path(tempfile.mkdtemp(prefix="rm_long_"))
    tok = build_bpe_tokenizer(["a small corpus for a tokenizer that is never used to encode"], vocab_size=300)
    config = Qwen3Config(**shape, pad_token_id=None, eos_token_id=tok.eos_token_id)
    config.num_labels = 1
    model_dir = save_random_model(Qwen3ForSequenceClassification, config, tok, work / "model")
    gen = torch.Generator().manual_seed(0)
    vocab = shape["vocab_size"]
    feature = {
        "chosen_input_ids": torch.randint(1, vocab, (args.chosen_tokens,), generator=gen).numpy(),
        "rejected_input_ids": torch.randint(1, vocab, (args.rejected_tokens,), generator=gen).numpy(),
        "margin": 0.0,
    }
    variants = [("padded", "sdpa")]
    if cuda:
        variants.append(("packed", "flex_attention"))
    else:
        variants.append(("packed", "sdpa"))
    if cuda and importlib.util.find_spec("flash_attn") is not None:
        variants.append(("packed", "flash_attention_2"))
    name = torch.cuda.get_device_name() if cuda else "cpu (smoke)"
    print(
        f"device {name}; torch {torch.__version__}; {args.shape if not args.smoke else 'smoke'}-shaped; one pair of "
        f"{args.chosen_tokens} + {args.rejected_tokens} tokens; gradient checkpointing {not args.no_checkpointing}"
    )
    for layout, attn in variants:
        model, tokenizer = load_reward_model(model_dir, device=device, attn_implementation=attn)
        if not args.no_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-6)
        pad = tokenizer.pad_token_id
        batch = (PreferenceCollator(pad) if layout == "padded" else PackedPreferenceCollator(pad))([feature])
        flash = None
        if attn.startswith("flash"):
            cu = batch["cu_seq_lens"].to(device)
            n = batch["max_length"]
            flash = {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": n, "max_length_k": n}
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times: list[float] = []
        error = ""
        try:
            for _ in range(args.steps):
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    if layout == "padded":
                        r = compute_rewards(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
                    else:
                        r = compute_rewards_packed(
                            model,
                            batch["input_ids"].to(device),
                            batch["position_ids"].to(device),
                            batch["reward_index"].to(device),
                            flash,
                        )
                bt_loss(r[:1], r[1:]).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        except torch.OutOfMemoryError as exc:
            error = f"out of memory: {str(exc).splitlines()[0]}"
        computed = int(batch["input_ids"].numel())
        out = {
            "layout": layout,
            "attn": attn,
            "tokens_computed": computed,
            "real_tokens": args.chosen_tokens + args.rejected_tokens,
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
            "step_s": round(statistics.median(times[1:] or times), 3) if times else None,
            "error": error,
        }
        print(json.dumps(out))
        del model, opt, batch
        if cuda:
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
