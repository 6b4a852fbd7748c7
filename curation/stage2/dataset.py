"""A finished stage-2 run as a dataset version: kept and flipped pairs, plus D_gold's training half.

Every line comes from the one record builder (:func:`curation.verdicts.pair_record`) in the
``messages`` shape ``rewardmodel.ml`` trains on. Kept pairs carry their source label, flipped ones
the other side (chosen and rejected swapped), both ``via: filter``, pool ``silver``; discarded and
dropped pairs are left out. The validation file is D_gold's fixed validation split, as in rounds.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

from annotation.models import Pair
from annotation.preference import other_side
from curation.datasets import in_validation_split, project_scope
from curation.models import DatasetVersion, VerifiedPair
from curation.stage2.models import Stage2Result, Stage2Run
from curation.verdicts import RECORD_FIELDS, filter_verdict, labels_by_pair, pair_record, verdicts_for
from rewardmodel.services import dataset_file_register

CHUNK = 2000


def stage2_dataset_freeze(*, run: Stage2Run) -> DatasetVersion:
    """Write and register the run's training file (and D_gold validation file when there is one)."""
    project = run.project
    name = f"stage 2 run {run.pk} ({run.config.get('policy', 'paper')})"
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_path, val_path = Path(tmp) / "train.jsonl", Path(tmp) / "gold_val.jsonl"
        with train_path.open("w", encoding="utf-8") as train, val_path.open("w", encoding="utf-8") as val:
            results = Stage2Result.objects.filter(run=run, outcome__in=["kept", "flipped"]).order_by("pair_id")
            last = 0
            while rows := list(results.filter(pair_id__gt=last).values_list("pair_id", "outcome")[:CHUNK]):
                last = rows[-1][0]
                by_id = Pair.objects.only(*RECORD_FIELDS).in_bulk([pid for pid, _ in rows])
                for pid, outcome in rows:
                    pair = by_id[pid]
                    side = pair.source_label if outcome == "kept" else other_side(pair.source_label)
                    split = f"stage2_{outcome}"
                    record = pair_record(
                        pair, filter_verdict(pair, side), fmt="messages", dataset_version=name, split=split
                    )
                    train.write(json.dumps(record, ensure_ascii=False) + "\n")
                    counts[split] += 1
            gold_ids = list(VerifiedPair.objects.filter(project=project, pool=VerifiedPair.Pool.GOLD).order_by("pair_id").values_list("pair_id", flat=True))  # fmt: skip
            fraction = float(run.config.get("gold_val_fraction", 0.5))
            for start in range(0, len(gold_ids), CHUNK):
                pairs = list(Pair.objects.filter(pk__in=gold_ids[start : start + CHUNK]).order_by("pk"))
                labels = labels_by_pair(p.pk for p in pairs)
                verdicts = verdicts_for(pairs, labels)
                for pair in pairs:
                    verdict = verdicts[pair.pk]
                    if not verdict.verified:
                        continue
                    split = "gold_val" if in_validation_split(pair.pk, fraction) else "gold_train"
                    if split == "gold_train" and not run.config.get("include_gold", True):
                        continue
                    record = pair_record(
                        pair, verdict, labels[pair.pk], fmt="messages", dataset_version=name, split=split
                    )
                    (val if split == "gold_val" else train).write(json.dumps(record, ensure_ascii=False) + "\n")
                    counts[split] += 1
        scope, ref = project_scope(project), f"stage2:{run.pk}"
        train_file = dataset_file_register(path=train_path, name=f"{project.name} {name} train", scope=scope, ref=ref)
        eval_file = (
            dataset_file_register(path=val_path, name=f"{project.name} {name} gold-val", scope=scope, ref=ref)
            if counts["gold_val"]
            else None
        )
    return DatasetVersion.objects.create(
        project=project,
        name=name,
        train_data=train_file,
        eval_data=eval_file,
        filters={
            "kind": "stage2",
            "stage2_run": run.pk,
            "policy": run.config.get("policy"),
            "train": "stage-2 kept (source label) and flipped (swapped) pairs, via filter, pool silver"
            + (", plus D_gold's training half" if run.config.get("include_gold", True) else ""),
            "gold_val_fraction": fraction,
        },
        counts=dict(counts),
        created_by=run.created_by,
    )
