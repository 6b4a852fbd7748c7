"""Benchmark (CPU): padding waste of padded micro-batches against padding-free (packed) rows, and the step time of
a tiny reward model trained both ways, on the shared data's real lengths.

    .venv/bin/python bench/rm_packing.py              # ~2 min on a quiet 2-core box
    .venv/bin/python bench/rm_packing.py --smoke      # a few seconds: checks the script runs
    .venv/bin/python bench/rm_packing.py --skip-timing  # the token counts only (deterministic; any machine)

Lengths: every shared pair (hh-rlhf harmless + summarize-from-feedback), rendered and truncated exactly as training
does (``tokenize_records``, ChatML template) with a byte-level BPE tokenizer trained on the same texts (16K vocab,
so token counts are close to a real model's). Micro-batches come from the trainer's own sampler
(``LengthGroupedBatchSampler``, seeded), with and without length grouping. Padded tokens = sum over micro-batches
of 2B x (longest sequence of the micro-batch); packed tokens = the real tokens. Waste = 1 - real / padded.

Step time: a tiny Qwen3 classifier (2 layers, hidden 64; attention sdpa, whose packed mask is dense
block-diagonal, so it shows the token saving in the projections and MLP, not flash-attention's varlen speed), one
forward + backward per micro-batch, padded (``PreferenceCollator``) vs packed (``PackedPreferenceCollator``), the
same micro-batches, median of ``--repeats`` passes. The rewards of the two layouts are checked equal first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def load_pairs() -> list[dict[str, Any]]:
    """All shared pairs."""
    rows: list[dict[str, Any]] = []
    for name in ("hh_dev.jsonl", "sff_comparisons.jsonl"):
        rows += [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


def waste_table(pairs: Any, batch_sizes: list[int], seed: int = 0) -> list[dict[str, Any]]:
    """Padded vs real tokens per (batch size, grouping) over one epoch of the trainer's sampler."""
    from rewardmodel.ml.data import LengthGroupedBatchSampler

    rows = []
    for grouped in (False, True):
        for b in batch_sizes:
            sampler = LengthGroupedBatchSampler(pairs.lengths(), b, seed, grouped)
            padded = real = 0
            for batch in sampler.batches(0):
                seqs = [pairs.chosen[i] for i in batch] + [pairs.rejected[i] for i in batch]
                padded += len(seqs) * max(len(s) for s in seqs)
                real += sum(len(s) for s in seqs)
            rows.append({"grouped": grouped, "batch": b, "padded": padded, "real": real, "waste": 1 - real / padded})
    return rows


def main() -> int:
    """Run the benchmark; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--time-max-length", type=int, default=1024, help="max length in the timed runs (CPU)")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per micro-batch in the timed runs")
    parser.add_argument("--micro-batches", type=int, default=8, help="micro-batches per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few pairs and one pass, to check the script")
    parser.add_argument("--skip-timing", action="store_true", help="only the token counts (deterministic)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    from rewardmodel.ml.backbones import build_bpe_tokenizer, save_random_model
    from rewardmodel.ml.data import (
        LengthGroupedBatchSampler,
        PackedPreferenceCollator,
        PreferenceCollator,
        tokenize_records,
    )
    from rewardmodel.ml.loss import bt_loss
    from rewardmodel.ml.modeling import compute_rewards, compute_rewards_packed, load_reward_model

    pairs = load_pairs()
    if args.smoke:
        pairs = pairs[:64]
        args.micro_batches, args.repeats, args.time_max_length = 2, 1, 256
    work = Path(tempfile.mkdtemp(prefix="rm_packing_"))
    texts = [p["prompt"] + " " + p["chosen"] + " " + p["rejected"] for p in pairs]
    tok = build_bpe_tokenizer(texts, vocab_size=16000, model_max_length=args.max_length)
    shape: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 192,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": max(args.max_length, 4096),
        "vocab_size": len(tok),
    }
    config = Qwen3Config(**shape, pad_token_id=None, eos_token_id=tok.eos_token_id)
    config.num_labels = 1
    model_dir = save_random_model(Qwen3ForSequenceClassification, config, tok, work / "model")
    model, tokenizer = load_reward_model(model_dir, device="cpu", attn_implementation="sdpa")

    toks = tokenize_records(pairs, tokenizer, args.max_length)
    lengths = [len(x) for x in toks.chosen + toks.rejected]
    print(
        f"{len(toks)} shared pairs, max_length {args.max_length}: sequence length mean "
        f"{statistics.mean(lengths):.0f}, median {statistics.median(lengths):.0f}, max {max(lengths)}"
    )
    print("padding waste over one epoch of the trainer's sampler (padded -> packed tokens):")
    for row in waste_table(toks, [1, 4, 8, 16]):
        kind = "length-grouped" if row["grouped"] else "shuffled      "
        print(
            f"  {kind} batch {row['batch']:>2} pairs: padded {row['padded']:>10,} tokens, packed {row['real']:>10,}"
            f" -> waste {row['waste']:.1%}, packed computes {row['real'] / row['padded']:.2f}x the tokens"
        )

    if args.skip_timing:
        return 0
    # ---- step time -------------------------------------------------------------------------------
    short = tokenize_records(pairs, tokenizer, args.time_max_length)
    padded_c = PreferenceCollator(tokenizer.pad_token_id)
    packed_c = PackedPreferenceCollator(tokenizer.pad_token_id)
    model.train()
    for grouped in (False, True):
        batches = LengthGroupedBatchSampler(short.lengths(), args.batch_size, 1, grouped).batches(0)
        batches = batches[1 : args.micro_batches + 1]  # [0] is the epoch's longest, moved first on purpose
        feats = [[short.feature(i) for i in b] for b in batches]
        check = feats[0]
        p, q = padded_c(check), packed_c(check)
        with torch.no_grad():
            r_pad = compute_rewards(model, p["input_ids"], p["attention_mask"])
            r_pack = compute_rewards_packed(model, q["input_ids"], q["position_ids"], q["reward_index"])
        assert torch.allclose(r_pad, r_pack, rtol=1e-4, atol=1e-5), (r_pad, r_pack)

        def step(layout: str, feats: list[Any] = feats) -> tuple[float, int]:
            t0 = time.perf_counter()
            computed = 0
            for f in feats:
                b = len(f)
                if layout == "padded":
                    batch = padded_c(f)
                    r = compute_rewards(model, batch["input_ids"], batch["attention_mask"])
                    computed += batch["input_ids"].numel()
                else:
                    batch = packed_c(f)
                    r = compute_rewards_packed(model, batch["input_ids"], batch["position_ids"], batch["reward_index"])
                    computed += batch["input_ids"].numel()
                bt_loss(r[:b], r[b:]).backward()
            model.zero_grad(set_to_none=True)
            return time.perf_counter() - t0, computed

        step("padded"), step("packed")  # warm-up
        times: dict[str, list[float]] = {"padded": [], "packed": []}
        computed: dict[str, int] = {}
        for _ in range(args.repeats):
            for layout in ("padded", "packed"):
                seconds, computed[layout] = step(layout)
                times[layout].append(seconds)
        pad_s, pack_s = statistics.median(times["padded"]), statistics.median(times["packed"])
        kind = "length-grouped" if grouped else "shuffled"
        print(
            f"step time, tiny Qwen3 (sdpa, CPU), {kind}, {len(feats)} micro-batches x {args.batch_size} pairs, "
            f"max_length {args.time_max_length}: padded {pad_s * 1000:.0f} ms ({computed['padded']:,} tokens), "
            f"packed {pack_s * 1000:.0f} ms ({computed['packed']:,} tokens) -> {pad_s / pack_s:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
