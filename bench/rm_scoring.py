"""Benchmark: CPU reward-scoring throughput (pairs/s), the library's Scorer vs a naive one-pair-at-a-time loop.

    .venv/bin/python bench/rm_scoring.py                                # 240 pairs, max_length 256, 2 threads
    .venv/bin/python bench/rm_scoring.py --model /tmp/rm_quality/final  # a trained model (meaningful INT8 agreement)
    .venv/bin/python bench/rm_scoring.py --pairs 120 --max-length 128 --no-onnx

All paths score the same pairs with the same model (default: the packaged MiniLM-L6 as a 1-label sequence
classifier with a seeded, untrained score head; --model for a trained checkpoint), fp32 on CPU, with the same token
ids (conversation + response, truncated to --max-length keeping the response), in the same process:

* naive: the plain transformers loop — for each pair, ``tokenizer(...)`` the two sequences, then one forward pass
  each (batch of 1, no padding) under ``torch.no_grad``;
* padded batches (reference, the TRL-style batched baseline): the same token ids in input order, batches of
  --padded-batch sequences each padded to max_length, ``torch.inference_mode``;
* library: ``rewardmodel.ml.infer.Scorer.score_pairs`` — one batched tokenisation, sequences sorted by length
  (longest first), dynamic padding per batch, token budget --max-batch-tokens, batch size --batch-size,
  ``torch.inference_mode``;
* library on ONNX Runtime (unless --no-onnx): the model exported with ``rewardmodel.ml.export.export_onnx``, scored
  by ``OnnxScorer`` in FP32 and dynamically quantised INT8 (export time not counted).

The machine is shared, so load drifts: the pairs are split into --rounds slices and every path scores each slice
in turn (order rotated per round), and each path's time is the sum over its slices. Pairs come from
/work/shared/data (both files, seeded sample). Timings include tokenisation and exclude model loading; every path
is warmed up once first. Score differences against the naive loop show all paths compute the same rewards; INT8
agreement ("same preference") is only meaningful for a trained model (an untrained head gives near-equal rewards).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def sample_pairs(n: int, seed: int) -> list[dict]:
    """``n`` pairs drawn (seeded) from both shared files."""
    rows = []
    for name in ("hh_dev.jsonl", "sff_comparisons.jsonl"):
        rows += [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def main() -> None:
    """Run all paths and print pairs/s and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=240)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-batch-tokens", type=int, default=8192)
    parser.add_argument("--padded-batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime FP32 / INT8 paths")
    parser.add_argument("--model", default=None, help="checkpoint dir (default: packaged MiniLM, untrained head)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    import numpy as np
    import torch

    from rewardmodel.ml.data import SequenceEncoder, to_messages
    from rewardmodel.ml.infer import Scorer

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    pairs = sample_pairs(args.pairs, args.seed)
    scorer = Scorer.from_pretrained(
        args.model,
        device="cpu",
        max_length=args.max_length,
        batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
    )
    model, tok = scorer.model, scorer.tokenizer
    model.eval()
    enc = SequenceEncoder(tok, scorer.max_length)
    lengths = [
        len(x)
        for x in enc.encode(
            [r["prompt"] for r in pairs] * 2, [r["chosen"] for r in pairs] + [r["rejected"] for r in pairs]
        )
    ]
    print(
        f"{len(pairs)} pairs, max_length {scorer.max_length}, tokens/sequence mean {np.mean(lengths):.0f} "
        f"median {np.median(lengths):.0f} max {max(lengths)}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"model {args.model or 'packaged MiniLM-L6 (untrained head)'}"
    )

    def naive(rows: list[dict]) -> np.ndarray:
        out = []
        for r in rows:
            msgs = to_messages(r["prompt"])
            for resp in (r["chosen"], r["rejected"]):
                conv, text = enc.split_texts(msgs, resp)
                ids = enc.truncate(
                    tok(conv, add_special_tokens=False)["input_ids"], tok(text, add_special_tokens=False)["input_ids"]
                )
                with torch.no_grad():
                    out.append(model(input_ids=torch.from_numpy(ids.astype(np.int64))[None]).logits[0, 0].item())
        return np.array(out).reshape(-1, 2)

    def padded(rows: list[dict]) -> np.ndarray:
        seqs = enc.encode([r["prompt"] for r in rows] * 2, [r["chosen"] for r in rows] + [r["rejected"] for r in rows])
        scores = []
        with torch.inference_mode():
            for start in range(0, len(seqs), args.padded_batch):
                chunk = seqs[start : start + args.padded_batch]
                ids = np.full((len(chunk), scorer.max_length), tok.pad_token_id, dtype=np.int64)
                mask = np.zeros_like(ids)
                for j, x in enumerate(chunk):
                    ids[j, : len(x)], mask[j, : len(x)] = x, 1
                scores.append(
                    model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits[:, 0].numpy()
                )
        flat = np.concatenate(scores)
        return np.stack([flat[: len(rows)], flat[len(rows) :]], axis=1)

    def library(s: Scorer) -> Callable[[list[dict]], np.ndarray]:
        def run(rows: list[dict]) -> np.ndarray:
            out = s.score_pairs(rows)
            return np.stack([out["r_chosen"], out["r_rejected"]], axis=1)

        return run

    paths: dict[str, Callable[[list[dict]], np.ndarray]] = {
        "naive one-pair-at-a-time loop": naive,
        f"padded batches (input order, {args.padded_batch} sequences padded to {scorer.max_length})": padded,
        f"library Scorer (length-sorted, dynamic padding, batch <= {args.batch_size}, <= {args.max_batch_tokens} tokens)": library(
            scorer
        ),
    }
    if not args.no_onnx:
        from rewardmodel.ml.export import OnnxScorer, export_onnx, quantize_onnx_int8
        from rewardmodel.ml.modeling import save_model

        work = Path(tempfile.mkdtemp(prefix="rm_scoring_"))
        save_model(model, tok, work / "model")  # the same weights and score head as above
        quantize_onnx_int8(export_onnx(work / "model", work / "onnx", max_length=scorer.max_length))
        for int8 in (False, True):
            onnx = OnnxScorer(
                work / "onnx",
                int8=int8,
                intra_op_num_threads=args.threads,
                batch_size=args.batch_size,
                max_batch_tokens=args.max_batch_tokens,
            )
            paths[f"library OnnxScorer {'INT8' if int8 else 'FP32'} (onnxruntime, same batching)"] = library(onnx)

    for fn in paths.values():
        fn(pairs[:2])  # warm-up
    names = list(paths)
    seconds = dict.fromkeys(names, 0.0)
    scores = {name: np.zeros((len(pairs), 2)) for name in names}
    for rnd in range(args.rounds):
        idx = list(range(rnd, len(pairs), args.rounds))
        rows = [pairs[i] for i in idx]
        for name in names[rnd % len(names) :] + names[: rnd % len(names)]:
            t0 = time.perf_counter()
            scores[name][idx] = paths[name](rows)
            seconds[name] += time.perf_counter() - t0

    base = names[0]
    ref = scores[base]
    rate = {name: len(pairs) / seconds[name] for name in names}
    for name in names:
        dev = float(np.abs(scores[name] - ref).max())
        agree = float(((scores[name][:, 0] > scores[name][:, 1]) == (ref[:, 0] > ref[:, 1])).mean())
        extra = (
            ""
            if name == base
            else f" = {rate[name] / rate[base]:.2f}x naive; max |Δ score| {dev:.1e}, same preference {agree:.1%}"
        )
        print(f"{name}: {seconds[name]:.1f}s, {rate[name]:.2f} pairs/s{extra}")
    lib_name, pad_name = names[2], names[1]
    print(
        f"library Scorer vs naive loop: {rate[lib_name] / rate[base]:.2f}x; vs padded batches: {rate[lib_name] / rate[pad_name]:.2f}x"
    )


if __name__ == "__main__":
    main()
