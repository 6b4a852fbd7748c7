"""A simulated curation round on the shared data: RM accuracy on D_gold before and after.

    .venv/bin/python bench/round_sim.py [--seed-verified 150] [--label-budget 300] [--max-length 192]

Set-up (PostgreSQL, fresh database): the shared hh-rlhf and TL;DR pairs; 20% held out as a test
set with their human labels. The rest is imported with *noisy* source labels (25% flipped, as an
unverified pool labelled by weak judges would be). Simulated annotators follow the human label
with 10% noise each; three label every pair through the real annotation services, and the real
curation gate turns majorities into D_gold.

Round 1 trains the packaged MiniLM on D_silver (+ the training half of D_gold), validates on the
other half of D_gold, scores verified pairs, retrieves neighbours of the mispredicted ones and
queues them. The annotators then label the first ``--label-budget`` pairs of their queue (the
retrieved ones), and round 2 retrains. As a control, the same budget of *random* pairs is labelled
in a copy of the project and trained the same way. Printed: D_gold accuracy (round validation
split), accuracy on the fixed held-out test set, and timings.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from _setup import fresh_postgres, shared_pairs

TASKS = {"harmless-base": "safety / harmful request", "tldr": "summarisation", "cnndm": "summarisation"}


def simulated_label(true_side: str, pair_strength: str, rng: random.Random, noise: float) -> dict[str, Any]:
    """An annotator who follows the human label (flipped with probability ``noise``) and mostly
    agrees on how clear the difference is."""
    side = true_side if rng.random() >= noise else ("B" if true_side == "A" else "A")
    strength = pair_strength if rng.random() < 0.85 else ("SLIGHTLY" if pair_strength == "CLEARLY" else "CLEARLY")
    return {"preference": f"{side}_{strength}", "controversiality": rng.choice(["low", "low", "medium"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed-verified", type=int, default=150)
    parser.add_argument("--label-budget", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=192)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--label-noise", type=float, default=0.25, help="flipped source labels in the pool")
    parser.add_argument("--annotator-noise", type=float, default=0.10)
    parser.add_argument("--limit", type=int, default=0, help="use only this many shared pairs (0 = all)")
    args = parser.parse_args()
    fresh_postgres("synpref_bench_round")
    import torch

    torch.set_num_threads(2)
    from django.db import transaction

    from annotation.models import Pair, Role
    from annotation.services import (
        AnnotationInput,
        annotation_submit,
        assignment_claim_next,
        import_file,
        project_create,
        user_create,
    )
    from curation.agreement_refresh import batch_refresh, pair_completed_handle
    from curation.models import VerifiedPair
    from curation.project_settings import curation_settings_update
    from curation.rounds import round_create, round_run
    from rewardmodel.ml.evaluate import evaluate

    rng = random.Random(2025)
    rows = shared_pairs()
    rng.shuffle(rows)
    if args.limit:
        rows = rows[: args.limit]
    n_test = len(rows) // 5
    test, pool = rows[:n_test], rows[n_test:]
    truth: dict[str, str] = {}  # external id -> "A" means the file's chosen (response_a) is truly better
    noisy = []
    for row in pool:
        flip = rng.random() < args.label_noise
        record = dict(row)
        if flip:
            record["chosen"], record["rejected"] = row["rejected"], row["chosen"]
        truth[row["id"]] = "B" if flip else "A"
        noisy.append(record)

    annotators = [
        user_create(username=f"sim{i}", password="sim-password-1", roles=[Role.ANNOTATOR.value]) for i in range(3)
    ]

    def make_project(name: str) -> Any:
        project = project_create(name=name, annotators_per_pair=3)
        project.members.add(*annotators)
        # 10% side noise per annotator on a pool that is 75% "A better" gives an ordinal alpha near
        # 0.45 (skewed marginals keep expected disagreement low): gate at 0.3 for the simulation.
        curation_settings_update(project=project, alpha_threshold=0.3, retest_rate=0.0, gate_min_units=1)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pool.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in noisy))
            import_file(project=project, path=path)
        return project

    def label_next(project: Any, n_pairs: int) -> int:
        """Each annotator labels up to n_pairs from the head of their queue; returns pairs completed."""
        done_pairs: set[int] = set()
        for user in annotators:
            for _ in range(n_pairs):
                assignment = assignment_claim_next(project=project, annotator=user)
                if assignment is None:
                    break
                pair = assignment.pair
                pair_strength = "CLEARLY" if zlib.crc32(pair.external_id.encode()) % 5 < 3 else "SLIGHTLY"
                label = simulated_label(truth[pair.external_id], pair_strength, rng, args.annotator_noise)
                data = AnnotationInput(
                    task_category=TASKS.get(pair.subset, "other"),
                    objectivity="opinion",
                    desired_attributes=["helpfulness"],
                    guideline="",
                    rationale="simulated",
                    time_spent_ms=20_000,
                    **label,
                )
                annotation_submit(assignment_id=assignment.pk, annotator=user, data=data)
                done_pairs.add(pair.pk)
        for pair_id in done_pairs:
            pair_completed_handle(pair_id=pair_id)
        for key in {f"import:{b}" for b in Pair.objects.filter(pk__in=done_pairs).values_list("batch_id", flat=True)}:
            batch_refresh(project_id=project.pk, batch_key=key, force=True)
        return len(done_pairs)

    def test_accuracy(model_path: str) -> float:
        return float(evaluate(model_path, test, max_length=args.max_length)["accuracy"])

    config = {
        "train": {"num_epochs": args.epochs, "batch_size": 16, "learning_rate": 3e-5, "max_length": args.max_length}
    }

    def run_round(project: Any) -> Any:
        started = time.perf_counter()
        with transaction.atomic():
            round_ = round_create(project=project, config=config, enqueue=False)
        done = round_run(round_id=round_.pk)
        if done.status != "done":
            sys.exit(f"round failed: {done.error}")
        done.elapsed = time.perf_counter() - started
        return done

    t0 = time.perf_counter()
    main_project = make_project("sim-retrieval")
    # Seed D_gold: the first pairs of the queue (import order = random), three labels each.
    label_next(main_project, args.seed_verified)
    n_gold0 = VerifiedPair.objects.filter(project=main_project).count()
    print(
        f"pool {len(pool)} pairs ({args.label_noise:.0%} of source labels flipped), test {len(test)}; seed D_gold {n_gold0} pairs"
    )
    r1 = run_round(main_project)
    acc1_test = test_accuracy(r1.model_version.path)
    m = r1.metrics
    print(
        f"round 1: D_gold accuracy {m['gold_accuracy']:.4f}, test {acc1_test:.4f}; verified {m['n_verified']}, "
        f"mispredicted {m['n_mispredicted']}, retrieved {m['n_retrieved']}, queued {m['n_queued']} ({r1.elapsed:.0f} s)"
    )

    # Control: a copy of the project with the same seed labels, then random pairs instead of retrieved ones.
    control = make_project("sim-random")
    seed_ids = set(VerifiedPair.objects.filter(project=main_project).values_list("pair__external_id", flat=True))
    by_external = dict(Pair.objects.filter(project=control).values_list("external_id", "pk"))
    from annotation.services import pair_set_priorities

    pair_set_priorities(priorities={by_external[e]: 2.0 for e in seed_ids})
    label_next(control, len(seed_ids))
    others = [pk for e, pk in by_external.items() if e not in seed_ids]
    rng.shuffle(others)
    pair_set_priorities(priorities=dict.fromkeys(others[: args.label_budget], 1.0))

    added = label_next(main_project, args.label_budget)
    label_next(control, args.label_budget)
    r2 = run_round(main_project)
    acc2_test = test_accuracy(r2.model_version.path)
    c2 = run_round(control)
    c2_test = test_accuracy(c2.model_version.path)
    print(f"annotators labelled {added} retrieved pairs (budget {args.label_budget} pairs x 3 labels)")
    print(
        f"round 2 (retrieved): D_gold accuracy {r2.metrics['gold_accuracy']:.4f} "
        f"(change {r2.metrics['accuracy_delta']:+.4f}), test {acc2_test:.4f} (change {acc2_test - acc1_test:+.4f}) ({r2.elapsed:.0f} s)"
    )
    print(f"control (same budget, random pairs): D_gold accuracy {c2.metrics['gold_accuracy']:.4f}, test {c2_test:.4f}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
