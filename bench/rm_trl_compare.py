"""Benchmark (GPU): our reward-model loop against TRL's ``RewardTrainer`` on the same Qwen3-0.6B-shaped model (random
weights built from its config, nothing downloaded), the same tokenised pairs and the same number of steps: real
tokens/s, MFU (on a GPU; ``bench/rm_gpu.py``'s FLOP model), peak memory, and accuracy on held-out pairs after
training. Then our sharded path (FSDP2) on every GPU of the machine against one GPU (scaling). Exits cleanly
(status 0) without CUDA.

    .venv/bin/python bench/rm_trl_compare.py                     # on a CUDA machine
    .venv/bin/python bench/rm_trl_compare.py --steps 60 --max-length 4096 --gradient-checkpointing
    .venv/bin/python bench/rm_trl_compare.py --smoke             # tiny shapes on CPU: checks the script runs
    .venv/bin/python bench/rm_trl_compare.py --cpu               # a small Qwen3-shaped model on CPU (fp32)

Both trainers get: AdamW at a constant ``--learning-rate`` (3e-6; 1e-4 with ``--cpu``), gradient clipping 1.0,
``--batch-size`` pairs per step, bf16 on a GPU (autocast on fp32 weights for ours, HF Trainer's ``bf16=True`` amp for
TRL; fp32 on CPU), SDPA attention, the same pre-tokenised
``chosen_ids`` / ``rejected_ids`` (our tokenizer and truncation; TRL skips its own tokenisation). TRL runs twice:
with its default sampler (shuffled batches, each padded to its longest pair) and with HF's length-grouped sampler
(``train_sampling_strategy="group_by_length"``); ours groups pairs by length. Tokens/s counts non-pad tokens only,
over every step of the run: the three runs train on the same pairs (``--steps`` × ``--batch-size`` of them, each
once), only in different batches, so they do the same work. Each timed run follows an untimed warm-up run of the
same trainer and sampler (the whole run on a GPU, ``--warmup`` steps on CPU): CUDA loads each kernel on first use
and the caching allocator grows to each new batch shape, costs that a cold run pays inside its timed steps.
Accuracy: both final models scored with ``rewardmodel.ml.evaluate.evaluate`` on ``--eval-pairs`` held-out pairs.

``--cpu`` runs the same comparison on the CPU with a small Qwen3-shaped model (4 layers, hidden 256; fp32 for both,
as neither trainer uses bf16 on CPU), max length 512, 60 steps and lr 1e-4 unless given: the two trainers' figures
are comparable with each other there, not with a GPU's.

Scaling: ``torchrun --standalone --nproc_per_node=G`` of ``rewardmodel.ml.train`` with ``parallelism="fsdp"``, the
same per-GPU batch, G = 1 and G = all GPUs (with ``--cpu``: Gloo ranks of one thread each, G = 1 and one per core, at
most 8); reported tokens/s (all ranks' tokens over rank 0's time in the steps, from ``--warmup`` on) and the
speed-up.
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
sys.path.insert(0, str(ROOT / "bench"))

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--max-length", type=int, default=2048)
parser.add_argument("--batch-size", type=int, default=8, help="pairs per step per GPU")
parser.add_argument("--steps", type=int, default=40)
parser.add_argument(
    "--warmup", type=int, default=5, help="CPU: steps of the untimed warm-up run; scaling: steps excluded from timings"
)
parser.add_argument("--eval-pairs", type=int, default=500)
parser.add_argument("--learning-rate", type=float, default=None, help="default 3e-6 (1e-4 with --cpu)")
parser.add_argument("--gradient-checkpointing", action="store_true")
parser.add_argument("--cpu", action="store_true", help="a small Qwen3-shaped model on CPU (fp32)")
parser.add_argument("--pairs", type=Path, default=None, help="a JSON Lines file of pairs (default: the shared data)")
parser.add_argument(
    "--ranks", type=int, default=None, help="scaling: 1 against this many (all GPUs; --cpu: cores, <= 8)"
)
parser.add_argument("--no-scaling", action="store_true", help="skip the FSDP scaling runs")
parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, to check the script")


def main() -> int:
    """Run the comparison; print one JSON summary line at the end."""
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    import torch

    if not torch.cuda.is_available() and not (args.smoke or args.cpu):
        print("rm_trl_compare: CUDA is not available; skipping (nothing was measured; --cpu runs a small model).")
        return 0
    if args.smoke:
        args.max_length, args.batch_size, args.steps, args.warmup, args.eval_pairs = 128, 2, 4, 1, 16
    elif args.cpu and args.max_length == parser.get_default("max_length"):
        args.max_length = 512
    if args.cpu and args.steps == parser.get_default("steps"):
        args.steps = 60
    lr = args.learning_rate or (1e-4 if args.cpu else 3e-6)
    cuda = torch.cuda.is_available() and not (args.smoke or args.cpu)
    device = torch.device("cuda" if cuda else "cpu")

    from rm_gpu import CPU_SMALL, QWEN3_06B, SMOKE, flops_per_token, load_pairs, peak_flops, warm_up
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    from rewardmodel.ml.backbones import build_bpe_tokenizer, save_random_model
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.data import tokenize_records
    from rewardmodel.ml.evaluate import evaluate
    from rewardmodel.ml.modeling import load_tokenizer
    from rewardmodel.ml.train import train

    pairs = (
        [json.loads(x) for x in args.pairs.read_text(encoding="utf-8").splitlines() if x.strip()]
        if args.pairs
        else load_pairs()
    )
    random.Random(0).shuffle(pairs)
    held_out, pool = pairs[: args.eval_pairs], pairs[args.eval_pairs :]
    work = Path(tempfile.mkdtemp(prefix="rm_trl_"))
    shape = SMOKE if args.smoke else CPU_SMALL if args.cpu else QWEN3_06B
    tok = build_bpe_tokenizer(
        [p["prompt"] + p["chosen"] + p["rejected"] for p in pairs[:5000]], vocab_size=min(16000, shape["vocab_size"])
    )
    config = Qwen3Config(**shape, pad_token_id=None, eos_token_id=tok.eos_token_id)
    config.num_labels = 1
    model_dir = save_random_model(Qwen3ForSequenceClassification, config, tok, work / "model")
    tokenizer = load_tokenizer(model_dir)
    need = args.steps * args.batch_size
    rows = (pool * (need // len(pool) + 1))[:need]
    name = (
        torch.cuda.get_device_name()
        if cuda
        else "cpu (smoke)"
        if args.smoke
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    with torch.device("meta"):
        named = list(Qwen3ForSequenceClassification(config).named_parameters())
    params = sum(p.numel() for _, p in named)
    toks = tokenize_records(rows, tokenizer, args.max_length)
    lengths = [len(x) for x in toks.chosen + toks.rejected]
    mean_len = sum(lengths) / len(lengths)
    fpt = flops_per_token(shape, sum(p.numel() for n, p in named if "embed" not in n), mean_len)
    peak = peak_flops(name) if cuda else float("nan")

    def mfu(tokens_per_s: float) -> float | None:
        """Model FLOP/s over the GPU's dense bf16 peak (None off the GPU)."""
        return round(tokens_per_s * fpt / peak, 4) if cuda else None

    print(
        f"device {name}; torch {torch.__version__}; {params / 1e6:.1f}M parameters; {args.batch_size} pairs/step; "
        f"max_length {args.max_length}; {args.steps} steps; lr {lr:g}"
    )
    results: dict[str, Any] = {
        "device": name,
        "parameters": params,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "learning_rate": lr,
        "mean_sequence_length": mean_len,
    }

    # ---- ours ------------------------------------------------------------------------------------
    stamps: list[tuple[float, float, float]] = []  # (time at the step's end, its tokens, its own tokens/s)

    class Timer:
        def on_log(self, step: int, total: int, metrics: dict) -> None:
            if cuda:
                torch.cuda.synchronize()
            stamps.append((time.perf_counter(), metrics["num_tokens"], metrics["tokens_per_second"]))

    cfg = RewardTrainingConfig(
        model_name_or_path=str(model_dir),
        output_dir=str(work / "ours"),
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=lr,
        gradient_checkpointing=args.gradient_checkpointing,
        attn_implementation="sdpa",
        resume=False,
    )
    warm_steps = args.steps if cuda else args.warmup
    warm_up(cfg, rows, warm_steps, work / "warm")  # untimed: warms the process with our batches
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    ours = train(cfg, rows, callbacks=[Timer()])
    # Every step: the first one's own time (its tokens over its tokens/s, measured around the step) plus the wall
    # time from its end to the last step's end.
    first_s = stamps[0][1] / stamps[0][2]
    ours_tps = sum(n for _, n, _ in stamps) / (first_s + stamps[-1][0] - stamps[0][0])
    results["ours"] = {
        "tokens_per_s": ours_tps,
        "mfu": mfu(ours_tps),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "accuracy": evaluate(ours.final_dir, held_out)["accuracy"],
    }
    print("ours", json.dumps(results["ours"]))

    # ---- TRL RewardTrainer ---------------------------------------------------------------------------
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rewardmodel.ml.modeling import load_reward_model

    dataset = Dataset.from_dict(
        {
            "chosen_ids": [list(map(int, x)) for x in toks.chosen],
            "rejected_ids": [list(map(int, x)) for x in toks.rejected],
            "length": [len(c) + len(r) for c, r in zip(toks.chosen, toks.rejected, strict=True)],
        }
    )

    def trl_run(key: str, sampling: str, steps: int, timed: bool = True) -> None:
        """One TRL run from the same initial weights; ``sampling`` is the HF Trainer's ``train_sampling_strategy``.
        Untimed (``timed=False``): only the run, to warm the process with this sampler's batches."""
        trl_stamps: list[tuple[float, float]] = []

        class TrlTimer(TrainerCallback):  # type: ignore[misc]
            def on_step_begin(self, *a: Any, **kw: Any) -> None:
                if not trl_stamps:  # the first step's start, no tokens yet
                    if cuda:
                        torch.cuda.synchronize()
                    trl_stamps.append((time.perf_counter(), 0.0))

            def on_log(self, *a: Any, logs: dict | None = None, **kw: Any) -> None:
                if logs and "num_tokens" in logs:  # cumulative non-pad tokens (its attention masks' sum)
                    if cuda:
                        torch.cuda.synchronize()
                    trl_stamps.append((time.perf_counter(), float(logs["num_tokens"])))

        model, _ = load_reward_model(model_dir, device=device, attn_implementation="sdpa")
        trl_args = RewardConfig(
            output_dir=str(work / (key if timed else f"{key}-warm")),
            per_device_train_batch_size=args.batch_size,
            max_steps=steps,
            learning_rate=lr,
            lr_scheduler_type="constant",
            max_grad_norm=1.0,
            bf16=cuda,
            gradient_checkpointing=args.gradient_checkpointing,
            max_length=args.max_length,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_dropout=True,
            center_rewards_coefficient=None,
            use_cpu=not cuda,
            train_sampling_strategy=sampling,
            length_column_name="length",
            remove_unused_columns=False,  # keep "length" for the sampler; the collator reads only the ids
        )
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer = RewardTrainer(
            model=model, args=trl_args, train_dataset=dataset, processing_class=tokenizer, callbacks=[TrlTimer()]
        )
        trainer.train()
        if not timed:
            return
        (t0, n0), (t1, n1) = trl_stamps[0], trl_stamps[-1]
        trainer.save_model(str(work / key / "final"))
        tokenizer.save_pretrained(str(work / key / "final"))
        results[key] = {
            "tokens_per_s": (n1 - n0) / (t1 - t0),
            "mfu": mfu((n1 - n0) / (t1 - t0)),
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "accuracy": evaluate(str(work / key / "final"), held_out)["accuracy"],
        }
        print(key, json.dumps(results[key]))

    # "random": its default, shuffled batches padded to their longest pair; "group_by_length": HF's
    # LengthGroupedSampler, the nearest to our length grouping. Each first warms the process with its own batches.
    for key, sampling in (("trl", "random"), ("trl_grouped", "group_by_length")):
        trl_run(key, sampling, warm_steps, timed=False)
        trl_run(key, sampling, args.steps)

    # ---- scaling of the sharded path -------------------------------------------------------------------
    # Every GPU against one; with --cpu, Gloo ranks of one thread each (OMP_NUM_THREADS=1), one per core.
    accelerator, most = ("gpu", torch.cuda.device_count()) if cuda else ("cpu", min(os.cpu_count() or 1, 8))
    most = args.ranks or most
    if (cuda or args.cpu) and most >= 2 and not args.no_scaling:
        from rewardmodel.ml.launch import launch

        results["fsdp"] = {"accelerator": accelerator}
        for g in (1, most):
            steps: list[tuple[float, float]] = []

            def on_event(event: dict, sink: list[tuple[float, float]] = steps) -> None:
                if event["event"] == "log":  # tokens of all ranks, rank 0's time in the step (ends with the reduce)
                    sink.append((event["num_tokens"], event["num_tokens"] / max(event["tokens_per_second"], 1e-9)))

            fsdp_cfg = RewardTrainingConfig.from_dict(
                {**cfg.to_dict(), "parallelism": "fsdp", "output_dir": str(work / f"fsdp{g}")}
            )
            fsdp_cfg.train_file = str(work / "train.jsonl")
            Path(fsdp_cfg.train_file).write_text("".join(json.dumps(r) + "\n" for r in rows * g))
            outcome = launch(fsdp_cfg, nproc=g, accelerator=accelerator, run_dir=work / f"launch{g}", on_event=on_event)
            if outcome.status != "succeeded":
                print(f"fsdp x{g} failed: {outcome.error}\n{outcome.log_tail}")
                continue
            timed = steps[args.warmup :]
            results["fsdp"][str(g)] = {"tokens_per_s": sum(n for n, _ in timed) / sum(t for _, t in timed)}
            print(f"fsdp x{g} ({accelerator})", json.dumps(results["fsdp"][str(g)]))
        if "1" in results["fsdp"] and str(most) in results["fsdp"]:
            results["fsdp"]["speedup"] = (
                results["fsdp"][str(most)]["tokens_per_s"] / results["fsdp"]["1"]["tokens_per_s"]
            )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
