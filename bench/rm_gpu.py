"""Benchmark (GPU): training tokens/s and MFU, and scoring throughput, for a Qwen3-0.6B-shaped reward model, the
library's paths beside a plain TRL-style padded baseline. Exits cleanly (status 0) when CUDA is not available.

    .venv/bin/python bench/rm_gpu.py                          # on a CUDA machine
    .venv/bin/python bench/rm_gpu.py --max-length 4096 --batch-size 2
    .venv/bin/python bench/rm_gpu.py --smoke                  # tiny shapes on CPU: checks the script runs

Model: ``Qwen3ForSequenceClassification`` built from a ``Qwen3Config`` with Qwen3-0.6B's shape (28 layers, hidden
1024, 16 query / 8 KV heads of dim 128, MLP 3072, vocab 151,936), random weights (nothing is downloaded), num_labels
1, fp32 master weights + bf16 autocast, SDPA attention. Tokenizer: byte-level BPE trained on the shared data (so
lengths are realistic), ChatML template. Data: the shared pairs (hh-rlhf harmless + summarize-from-feedback),
cycled as needed.

Training (same model, optimizer AdamW lr 3e-6, same number of steps, same pairs per step):
* library: ``rewardmodel.ml.train.train`` — length-grouped micro-batches, dynamic padding to the batch's longest
  sequence, chosen+rejected in one forward pass;
* baseline: the plain TRL-style loop — shuffled batches, every sequence padded to ``max_length``
  (``padding="max_length"``), chosen+rejected in one forward pass, same loss and optimizer.
Reported: real (non-pad) tokens/s after --warmup steps (the library's timed run follows an untimed one of its own;
scoring is timed on a second pass), and MFU = achieved model FLOP/s over the GPU's dense bf16
peak (989 TFLOP/s for H100/H200 SXM; --peak-tflops to override), with model FLOPs per real token
= 6·N (N = non-embedding parameters) + 12·layers·heads·head_dim·mean_len (attention; PaLM's formula). The
baseline's MFU counts only real tokens too, so padding waste shows up as lost MFU.

Scoring (bf16 autocast, inference mode): library ``Scorer.score_pairs`` (length-sorted, dynamic padding, token
budget) vs baseline (input order, fixed batch, padded to max_length); pairs/s and real (non-pad) tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The shared data beside the checkout; SYNPREF_DATA_DIR names another copy (the GPU machine gets only the checkout).
DATA = Path(os.environ.get("SYNPREF_DATA_DIR") or ROOT.parent / "shared" / "data")

QWEN3_06B: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": True,
}
SMOKE: dict[str, Any] = {
    **QWEN3_06B,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "vocab_size": 4096,
}

CPU_SMALL: dict[str, Any] = {  # bench/rm_trl_compare.py --cpu: small enough for a 2-core machine, same block layout
    **QWEN3_06B,
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 8000,
}


def peak_flops(device_name: str, override_tflops: float | None = None) -> float:
    """The GPU's dense bf16 peak in FLOP/s (989 TFLOP/s for H100/H200 SXM; NaN for an unknown device)."""
    return (override_tflops or (989.0 if any(k in device_name for k in ("H100", "H200")) else float("nan"))) * 1e12


def flops_per_token(shape: dict[str, Any], n_nonembed: int, mean_len: float) -> float:
    """Model FLOPs per trained token (PaLM's formula): 6·N + 12·layers·heads·head_dim·mean sequence length."""
    attn = 12 * shape["num_hidden_layers"] * shape["num_attention_heads"] * shape["head_dim"] * mean_len
    return 6 * n_nonembed + attn


def warm_up(cfg: Any, rows: list[dict], steps: int, out_dir: Path) -> None:
    """An untimed run of our loop (``cfg``, its first ``steps`` steps, writing to ``out_dir``): CUDA loads each kernel
    on first use and the caching allocator grows to each new batch shape, costs that would otherwise land in the
    first timed run's steps."""
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.train import train

    train(RewardTrainingConfig.from_dict({**cfg.to_dict(), "output_dir": str(out_dir), "max_steps": steps}), rows)


def load_pairs() -> list[dict]:
    """All shared pairs."""
    rows: list[dict] = []
    for name in ("hh_dev.jsonl", "sff_comparisons.jsonl"):
        rows += [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def main() -> int:
    """Run the benchmark; return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per step (2x sequences)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps excluded from the timings")
    parser.add_argument("--score-pairs", type=int, default=2000)
    parser.add_argument("--score-batch", type=int, default=64, help="baseline batch size (sequences); library cap")
    parser.add_argument("--score-max-batch-tokens", type=int, default=131072)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, to check the script")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("rm_gpu: CUDA is not available; skipping the GPU benchmark.")
        return 0
    if args.smoke:
        args.max_length, args.batch_size, args.steps, args.warmup, args.score_pairs = 256, 2, 4, 1, 40
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")

    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    from rewardmodel.ml.backbones import build_bpe_tokenizer, save_random_model
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.data import tokenize_records
    from rewardmodel.ml.infer import Scorer
    from rewardmodel.ml.modeling import load_tokenizer

    pairs = load_pairs()
    random.Random(0).shuffle(pairs)
    work = Path(tempfile.mkdtemp(prefix="rm_gpu_"))
    shape = SMOKE if args.smoke else QWEN3_06B
    tok = build_bpe_tokenizer(
        [p["prompt"] + p["chosen"] + p["rejected"] for p in pairs], vocab_size=min(16000, shape["vocab_size"])
    )
    config = Qwen3Config(**shape, pad_token_id=None, eos_token_id=tok.eos_token_id)
    config.num_labels = 1
    model_dir = save_random_model(Qwen3ForSequenceClassification, config, tok, work / "model")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (smoke)"
    peak = peak_flops(name, args.peak_tflops)

    tokenizer = load_tokenizer(model_dir)
    toks = tokenize_records(pairs, tokenizer, args.max_length)
    lengths = [len(x) for x in toks.chosen + toks.rejected]
    print(
        f"device {name}; torch {torch.__version__}; max_length {args.max_length}; {args.batch_size} pairs/step; "
        f"sequence length mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}"
    )

    # ---- library training ------------------------------------------------------------------
    from rewardmodel.ml.train import train

    times: list[tuple[float, float, float]] = []  # (timestamp, real tokens, pairs)

    class Timer:
        def on_log(self, step: int, total: int, metrics: dict) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter(), metrics["num_tokens"], args.batch_size))

    need = args.steps * args.batch_size
    train_rows = (pairs * (need // len(pairs) + 1))[:need]
    cfg = RewardTrainingConfig(
        model_name_or_path=str(model_dir),
        output_dir=str(work / "out"),
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=3e-6,
        bf16=True,
        gradient_checkpointing=args.gradient_checkpointing,
        resume=False,
        attn_implementation="sdpa",
    )
    warm_up(cfg, train_rows, args.steps if device.type == "cuda" else args.warmup, work / "warm")  # the whole run
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train(cfg, train_rows, callbacks=[Timer()])
    lib_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    t_start = times[args.warmup - 1][0]
    lib_tokens = sum(t[1] for t in times[args.warmup :])
    lib_tps = lib_tokens / (times[-1][0] - t_start)

    # ---- baseline training: shuffled batches padded to max_length -----------------------------
    from rewardmodel.ml.loss import bt_loss
    from rewardmodel.ml.modeling import compute_rewards, load_reward_model

    model, _ = load_reward_model(model_dir, device=device, attn_implementation="sdpa")
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    n_nonembed = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-6)
    model.train()
    order = list(range(len(toks)))
    random.Random(1).shuffle(order)
    pad = tokenizer.pad_token_id
    base_tokens = 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(args.steps):
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, base_tokens = time.perf_counter(), 0.0
        idx = [order[(step * args.batch_size + i) % len(order)] for i in range(args.batch_size)]
        seqs = [toks.chosen[i] for i in idx] + [toks.rejected[i] for i in idx]
        ids = torch.full((len(seqs), args.max_length), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.as_tensor(s, dtype=torch.long)
            mask[j, : len(s)] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            r = compute_rewards(model, ids, mask)
        loss = bt_loss(r[: args.batch_size], r[args.batch_size :])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        base_tokens += float(mask.sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    base_tps = base_tokens / (time.perf_counter() - t0)
    base_mem = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    del opt
    mean_len = sum(lengths) / len(lengths)
    fpt = flops_per_token(shape, n_nonembed, mean_len)
    print(f"model: {n_nonembed / 1e6:.0f}M non-embedding parameters; {fpt / 1e9:.2f} GFLOP per trained token")
    print(
        f"training, library (length-grouped, dynamic padding): {lib_tps:,.0f} real tokens/s, MFU {lib_tps * fpt / peak:.1%}, peak mem {lib_mem:.1f} GiB"
    )
    print(
        f"training, baseline (shuffled, padded to max_length): {base_tps:,.0f} real tokens/s, MFU {base_tps * fpt / peak:.1%}, peak mem {base_mem:.1f} GiB"
    )
    print(f"training speed-up: {lib_tps / base_tps:.2f}x")

    # ---- scoring ---------------------------------------------------------------------------
    model.eval()
    score_rows = (pairs * (args.score_pairs // len(pairs) + 1))[: args.score_pairs]
    scorer = Scorer(
        model,
        tokenizer,
        max_length=args.max_length,
        batch_size=args.score_batch * 4,
        max_batch_tokens=args.score_max_batch_tokens,
        bf16=True,
    )
    scorer.score_pairs(score_rows)  # untimed: warms every batch shape the timed pass will use

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    sync()
    t0 = time.perf_counter()
    lib = scorer.score_pairs(score_rows)
    sync()
    lib_pps = len(score_rows) / (time.perf_counter() - t0)

    sub = tokenize_records(score_rows, tokenizer, args.max_length)
    seqs = sub.chosen + sub.rejected

    def baseline_scores(seqs: list) -> list[torch.Tensor]:
        out = []
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            for start in range(0, len(seqs), args.score_batch):
                chunk = seqs[start : start + args.score_batch]
                ids = torch.full((len(chunk), args.max_length), pad, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for j, s in enumerate(chunk):
                    ids[j, : len(s)] = torch.as_tensor(s, dtype=torch.long)
                    mask[j, : len(s)] = 1
                out.append(compute_rewards(model, ids.to(device), mask.to(device)).float().cpu())
        return out

    baseline_scores(seqs[: 2 * args.score_batch])  # untimed: its batches all have one shape
    sync()
    t0 = time.perf_counter()
    out = baseline_scores(seqs)
    sync()
    base_pps = len(score_rows) / (time.perf_counter() - t0)
    base_scores = torch.cat(out).numpy()
    n = len(score_rows)
    agree = float(((lib["r_chosen"] > lib["r_rejected"]) == (base_scores[:n] > base_scores[n:])).mean())
    per_pair = sum(len(x) for x in seqs) / n  # real tokens of a pair (chosen + rejected)
    print(
        f"scoring, library Scorer (sorted, dynamic padding): {lib_pps:,.0f} pairs/s, {lib_pps * per_pair:,.0f} tokens/s"
    )
    print(
        f"scoring, baseline (input order, padded to max_length, batch {args.score_batch}): {base_pps:,.0f} pairs/s, "
        f"{base_pps * per_pair:,.0f} real tokens/s"
    )
    print(
        f"scoring speed-up: {lib_pps / base_pps:.2f}x (preference agreement between the two: {agree:.3f}; bf16 noise)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
