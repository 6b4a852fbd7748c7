"""Dataset versions: frozen snapshots of a project's curated data, listed, downloaded and trained on.

Two kinds, both written line by line by :func:`curation.verdicts.pair_record` (the export's builder)
in the ``messages`` shape that ``rewardmodel.ml`` trains on:

* ``round`` (a curation round's data step): training file = D_silver (unverified pairs with a
  source label, or with ``silver="judges"`` the pairs the LLM judges decided, ``via: judge``; never
  a disputed or discarded one) plus the training half of D_gold; validation file = the other half
  of D_gold (a fixed hash split).
* ``gold`` ("train on this project's D_gold"): only verified pairs; training half and validation half.

A version's files are the reward-model app's registered files (hashed copies), so a training job
that references them trains on exactly this snapshot; the job records the version in ``data_source``.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Pair, Project
from curation.models import CurationRound, DatasetVersion
from curation.verdicts import (
    DISCARDED,
    DISPUTED,
    VERIFIED,
    judge_verdicts,
    labels_by_pair,
    pair_record,
    source_verdict,
    verdicts_for,
)
from rewardmodel.models import DatasetFile, TrainingJob
from rewardmodel.services import dataset_file_register
from rewardmodel.sources import ResolvedSource

KIND_ROUND = "round"
KIND_GOLD = "gold"
KINDS = {KIND_ROUND: "D_silver + D_gold training half (curation round)", KIND_GOLD: "D_gold only"}
PARTS = ("train", "gold")
#: Where a round's D_silver labels come from: the import's chosen/rejected, or the LLM judges' verdicts.
SILVER_SOURCES = {"source": "unverified pairs with a source label", "judges": "unverified pairs the LLM judges decided"}
CHUNK = 2000


def project_scope(project: Project) -> str:
    """The reward-model app's scope for a project's models and files."""
    return f"project:{project.pk}"


def in_validation_split(pair_id: int, fraction: float) -> bool:
    """The fixed D_gold validation split: a hash of the pair id, the same in every round."""
    digest = hashlib.sha256(f"gold-split:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _chunks(queryset: QuerySet[Pair]) -> Iterator[list[Pair]]:
    last = 0
    while rows := list(queryset.filter(pk__gt=last).order_by("pk")[:CHUNK]):
        yield rows
        last = rows[-1].pk


def dataset_version_freeze(
    *,
    project: Project,
    name: str,
    gold_val_fraction: float,
    kind: str = KIND_ROUND,
    silver: str = "source",
    round_: CurationRound | None = None,
    created_by: Any = None,
) -> DatasetVersion:
    """Write the version's training and validation files, register both, and record counts and filters.

    ``silver``: D_silver's labels, ``source`` (the import's) or ``judges`` (the LLM judges' verdicts,
    ``via: judge``; a pair they did not decide is left out).
    Raises ValidationError (naming the field) for a bad kind, fraction or silver source, or when there
    is nothing to train on.
    """
    if silver not in SILVER_SOURCES:
        raise ValidationError(
            {"silver": f"unknown silver source {silver!r}; choose one of {', '.join(SILVER_SOURCES)}"}
        )
    if kind not in KINDS:
        raise ValidationError({"kind": f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}"})
    if not 0.0 <= gold_val_fraction <= 1.0:
        raise ValidationError({"gold_val_fraction": "must be between 0 and 1"})
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        train_path, val_path = Path(tmp) / "train.jsonl", Path(tmp) / "gold_val.jsonl"
        with train_path.open("w", encoding="utf-8") as train, val_path.open("w", encoding="utf-8") as val:
            for pairs in _chunks(Pair.objects.filter(project=project)):
                labels = labels_by_pair(p.pk for p in pairs)
                verdicts = verdicts_for(pairs, labels)
                judged = judge_verdicts(p.pk for p in pairs) if kind == KIND_ROUND and silver == "judges" else {}
                for pair in pairs:
                    verdict = verdicts[pair.pk]
                    if verdict.state == VERIFIED:
                        split = "gold_val" if in_validation_split(pair.pk, gold_val_fraction) else "gold_train"
                        counts[f"via_{verdict.via}"] += 1
                    elif (
                        kind == KIND_ROUND
                        and (pair.pk in judged if silver == "judges" else bool(pair.source_label))
                        and verdict.state not in (DISPUTED, DISCARDED)
                        and verdict.reason is None  # a lead-resolved pair waiting for its gate is not silver
                    ):
                        split = "silver"
                        verdict = judged[pair.pk] if silver == "judges" else source_verdict(pair)
                        counts[f"silver_via_{verdict.via}"] += 1
                    else:
                        continue
                    record = pair_record(
                        pair, verdict, labels[pair.pk], fmt="messages", dataset_version=name, split=split
                    )
                    (val if split == "gold_val" else train).write(json.dumps(record, ensure_ascii=False) + "\n")
                    counts[split] += 1
        if counts["silver"] + counts["gold_train"] == 0:
            raise ValidationError(
                "no training data: verify some pairs"
                + (
                    (
                        ", or let the LLM judges label retrieved pairs"
                        if silver == "judges"
                        else ", or import pairs with chosen/rejected labels"
                    )
                    if kind == KIND_ROUND
                    else ""
                )
                + (" (every verified pair fell in the validation split)" if counts["gold_val"] else "")
            )
        scope = project_scope(project)
        ref = f"round:{round_.number}" if round_ else kind
        train_file = dataset_file_register(
            path=train_path, name=f"{project.name} {name} train", scope=scope, ref=ref, created_by=created_by
        )
        eval_file = (
            dataset_file_register(
                path=val_path, name=f"{project.name} {name} gold-val", scope=scope, ref=ref, created_by=created_by
            )
            if counts["gold_val"]
            else None
        )
    filters: dict[str, Any] = {
        "kind": kind,
        "gold": "verified pairs (final label: annotator majority or lead), from curation.verdicts",
        "gold_val_fraction": gold_val_fraction,
    }
    if kind == KIND_ROUND:
        filters["silver"] = f"{SILVER_SOURCES[silver]}, never disputed or discarded"
        filters["silver_labels"] = silver
    return DatasetVersion.objects.create(
        project=project,
        name=name,
        round=round_,
        train_data=train_file,
        eval_data=eval_file,
        filters=filters,
        counts=dict(counts),
        created_by=created_by,
    )


def dataset_version_freeze_gold(
    *, project: Project, created_by: Any = None, gold_val_fraction: float = 0.5
) -> DatasetVersion:
    """Freeze the project's D_gold now as a ``gold`` dataset version (named by the time)."""
    name = f"D_gold {timezone.localtime().strftime('%Y-%m-%d %H:%M:%S')}"
    return dataset_version_freeze(
        project=project, name=name, gold_val_fraction=gold_val_fraction, kind=KIND_GOLD, created_by=created_by
    )


# --- selectors -----------------------------------------------------------------------------------


def dataset_version_list(project: Project, *, kind: str | None = None) -> QuerySet[DatasetVersion]:
    """A project's versions, newest first, with their files, round and author (a page loops over them)."""
    versions = DatasetVersion.objects.filter(project=project).select_related(
        "train_data", "eval_data", "round", "created_by"
    )
    if kind:
        versions = versions.filter(filters__kind=kind)
    return versions.order_by("-created_at", "-id")


def dataset_version_get(project: Project, version_id: int) -> DatasetVersion | None:
    return dataset_version_list(project).filter(pk=version_id).first()


def dataset_version_file(version: DatasetVersion, part: str) -> DatasetFile | None:
    """``train`` (the training file) or ``gold`` (the D_gold validation file); None when absent."""
    return {"train": version.train_data, "gold": version.eval_data}.get(part)


def dataset_version_source_label(version: DatasetVersion) -> str:
    """What a training job records as its data source."""
    return f"dataset-version:{version.pk} ({version.project.name} / {version.name})"


def training_jobs_for_version(version: DatasetVersion) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(data_source__startswith=f"dataset-version:{version.pk} ").order_by("-created_at")


# --- the Models page's training sources ----------------------------------------------------------


class CurationTrainingSources:
    """Offers each project's D_gold (frozen on demand) and its dataset versions to the Models page.

    Registered with ``rewardmodel.sources`` in ``CurationConfig.ready`` (rewardmodel imports no curation).
    """

    GOLD = "curation:gold:"
    VERSION = "curation:version:"

    def choices(self) -> list[tuple[str, str]]:
        found = [
            (f"{self.GOLD}{p.pk}", f"{p.name}: D_gold now (freeze the verified pairs)") for p in Project.objects.all()
        ]
        versions = DatasetVersion.objects.select_related("project", "train_data").order_by("-created_at", "-id")[:100]
        found += [
            (f"{self.VERSION}{v.pk}", f"{v.project.name}: {v.name} ({v.train_data.n_records} pairs to train)")
            for v in versions
        ]
        return found

    def resolve(self, key: str, *, created_by: Any = None) -> ResolvedSource | None:
        if key.startswith(self.GOLD) and key.removeprefix(self.GOLD).isdigit():
            project = Project.objects.filter(pk=int(key.removeprefix(self.GOLD))).first()
            if project is None:
                raise ValidationError("that project no longer exists")
            version: DatasetVersion = dataset_version_freeze_gold(project=project, created_by=created_by)
        elif key.startswith(self.VERSION) and key.removeprefix(self.VERSION).isdigit():
            found = (
                DatasetVersion.objects.select_related("project").filter(pk=int(key.removeprefix(self.VERSION))).first()
            )
            if found is None:
                raise ValidationError("that dataset version no longer exists")
            version = found
        else:
            return None
        return ResolvedSource(
            train_data=version.train_data,
            eval_data=version.eval_data,
            scope=project_scope(version.project),
            label=dataset_version_source_label(version),
        )


training_sources = CurationTrainingSources()
