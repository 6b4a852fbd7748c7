"""Benchmark: reward-model quality of the default CPU backbone (packaged MiniLM-L6) on the shared data.

    .venv/bin/python bench/rm_quality.py                                   # defaults: 120 steps, max_length 128
    .venv/bin/python bench/rm_quality.py --max-steps 300 --max-length 256  # better, ~4x longer

Split (seeded, documented): each file of /work/shared/data (hh_dev.jsonl: subset harmless-base;
sff_comparisons.jsonl: subsets tldr and cnndm) is shuffled with random.Random(seed) (seed 0 by default) and its
last 20% (--holdout-frac) is held out; the training portions of both files are combined and shuffled again by the
trainer's seeded length-grouped sampler. The holdout is never trained on.

Reports pair accuracy (strict: ties are wrong) and mean margin on the holdout, overall and per subset, before
training (MiniLM encoder + freshly initialised score head, seed fixed) and after training (the final model, and the
best checkpoint when --eval-every is set, chosen on the same holdout and therefore optimistic), plus training time.
Training: Bradley-Terry loss, AdamW, linear warm-up (10%) then linear decay, batch 8 pairs, CPU, fp32.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
FILES = ("hh_dev.jsonl", "sff_comparisons.jsonl")


def split(seed: int, holdout_frac: float) -> tuple[list[dict], list[dict]]:
    """(train, holdout): per file, seeded shuffle, last ``holdout_frac`` held out; train portions combined."""
    train, hold = [], []
    for name in FILES:
        rows = [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        random.Random(seed).shuffle(rows)
        cut = len(rows) - round(holdout_frac * len(rows))
        train += rows[:cut]
        hold += rows[cut:]
    return train, hold


def fmt(metrics: dict) -> str:
    """One line: overall accuracy and per-subset accuracies with counts."""
    parts = [f"overall {metrics['accuracy']:.3f} (n={metrics['n']}, margin {metrics['mean_margin']:+.3f})"]
    for name, m in metrics["per_subset"].items():
        parts.append(f"{name} {m['accuracy']:.3f} (n={m['n']})")
    return " | ".join(parts)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=120)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--holdout-frac", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=0, help="also keep a best checkpoint (on the holdout)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", default=None, help="default: a temporary directory")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    import torch

    from rewardmodel.ml.callbacks import TrainerCallback
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.evaluate import evaluate
    from rewardmodel.ml.infer import Scorer
    from rewardmodel.ml.train import train

    torch.set_num_threads(args.threads)
    train_rows, hold_rows = split(args.seed, args.holdout_frac)
    print(
        f"data: {len(train_rows)} train pairs, {len(hold_rows)} holdout pairs (seed {args.seed}, holdout {args.holdout_frac:.0%} per file)"
    )
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu")

    torch.manual_seed(args.seed)  # the same score-head init the trainer starts from
    t0 = time.perf_counter()
    before = evaluate(Scorer.from_pretrained(None, max_length=args.max_length, device="cpu"), hold_rows)
    eval_seconds = time.perf_counter() - t0
    print(f"before training: {fmt(before)}   [scored in {eval_seconds:.1f}s]")

    class Progress(TrainerCallback):
        def on_log(self, step: int, total_steps: int, metrics: dict) -> None:
            if step % 20 == 0 or step == total_steps:
                print(
                    f"  step {step}/{total_steps} loss {metrics['loss']:.4f} acc {metrics['accuracy']:.3f} "
                    f"lr {metrics['lr']:.2e} {metrics['tokens_per_second']:.0f} tok/s",
                    flush=True,
                )

    out_dir = args.output_dir or tempfile.mkdtemp(prefix="rm_quality_")
    config = RewardTrainingConfig(
        output_dir=out_dir,
        max_steps=args.max_steps,
        max_length=args.max_length,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        lr_scheduler="linear",
        warmup_ratio=0.1,
        seed=args.seed,
        eval_every=args.eval_every,
        eval_batch_size=64,
        resume=False,
    )
    t0 = time.perf_counter()
    result = train(config, train_rows, hold_rows if args.eval_every else None, callbacks=[Progress()])
    train_seconds = time.perf_counter() - t0
    pairs_seen = args.max_steps * args.batch_size
    print(
        f"training: {result.global_step} steps x {args.batch_size} pairs = {pairs_seen} pairs "
        f"({pairs_seen / len(train_rows):.2f} epochs) in {train_seconds:.1f}s "
        f"({train_seconds / max(result.global_step, 1):.2f} s/step), max_length {args.max_length}, lr {args.lr}"
    )
    after = evaluate(Scorer.from_pretrained(result.final_dir, max_length=args.max_length, device="cpu"), hold_rows)
    print(f"after training (final): {fmt(after)}")
    if result.best_dir:
        best = evaluate(Scorer.from_pretrained(result.best_dir, max_length=args.max_length, device="cpu"), hold_rows)
        print(f"after training (best, step {result.best_step}, selected on the holdout): {fmt(best)}")
    print(f"model: {result.final_dir}")


if __name__ == "__main__":
    main()
