"""Curation rounds: the reward model in the loop (stage 1, steps 3-5 of DESIGN.md).

A round runs as one task on the ``gpu`` queue (it trains, scores and embeds), step by step:

1. data: freeze a DatasetVersion. Training file = D_silver: the project's unverified pairs with a
   source label (chosen/rejected from the import, or an LLM judge's verdict), plus the human-verified
   pairs outside the fixed validation split. Validation file = D_gold's validation split: a
   deterministic ``gold_val_fraction`` of the verified pairs, chosen by a hash of the pair id so it
   never changes between rounds. (The paper trains on LLM-verified data that human labels guide; with
   no LLM judge configured, half the human labels train and half validate.)
2. train: a TrainingJob through the reward-model app; the checkpoint with the best D_gold accuracy.
3. score: p = σ(r(x, y_w) − r(x, y_l)) for every verified pair (PairScore rows).
4. embed: conversation + attributes of every unverified, unlabelled pair with the packaged MiniLM
   encoder, into an approximate-nearest-neighbour index (curation.retrieval).
5. retrieve: for each verified pair, k = 8 if p ≤ 0.5 else ⌈8·(1 − p)⌉ neighbours (curation.sampling).
6. queue: the retrieved pairs go to the front of the annotation queue with priority 1 − p
   (deduplicated; a pair keeps the highest priority it was given). With the round setting
   ``silver_labels = "judges"`` the retrieved pairs are also sent to the LLM judges (a
   ``silver`` judge run, curation.judges): their decided outcomes become ``via: judge`` verdicts,
   and the next round's D_silver is those verdicts instead of the source files' labels.

Each finished step is recorded on the round, so a round whose worker died resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Pair, Project
from annotation.services import pair_set_priorities
from config import jobs
from curation.datasets import dataset_version_freeze, dataset_version_source_label, project_scope
from curation.jobs import ROUND
from curation.models import CurationRound, Dispute, PairScore, VerifiedPair
from curation.verdicts import attribute_majorities, labels_by_pair, pair_record, verdicts_for
from rewardmodel.models import TrainingJob
from rewardmodel.services import (
    TextEmbedder,
    conversation_text,
    model_version_promote,
    reward_scorer_load,
    text_embedder_get,
    training_job_create,
    training_job_run,
)

logger = logging.getLogger(__name__)

DEFAULT_ROUND_CONFIG: dict[str, Any] = {
    "k_max": 8,
    "gold_val_fraction": 0.5,
    "base_model": "default",
    "train": {"num_epochs": 1, "batch_size": 16, "learning_rate": 3e-5, "max_length": 256, "eval_every": 0},
    "embed_batch_size": 64,
    "promote_current_best": True,
    # Where D_silver's labels come from: "source" (the import's chosen/rejected) or "judges" (LLM judges).
    "silver_labels": "source",
}
SILVER_LABELS = ("source", "judges")
CHUNK = 2000


_scope = project_scope


def round_config(overrides: dict[str, Any] | None) -> dict[str, Any]:
    config = json.loads(json.dumps(DEFAULT_ROUND_CONFIG))
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ValidationError({key: "unknown round setting"})
        if key == "train":
            if not isinstance(value, dict):
                raise ValidationError({"train": "must be an object of training settings"})
            config["train"].update(value)
        else:
            config[key] = value
    if not isinstance(config["k_max"], int) or not 1 <= config["k_max"] <= 64:
        raise ValidationError({"k_max": "must be an integer from 1 to 64"})
    if not 0.0 < float(config["gold_val_fraction"]) <= 1.0:
        raise ValidationError({"gold_val_fraction": "must be in (0, 1]"})
    if config["silver_labels"] not in SILVER_LABELS:
        raise ValidationError({"silver_labels": f"must be one of {', '.join(SILVER_LABELS)}"})
    return config


def round_create(
    *, project: Project, created_by: Any = None, config: dict[str, Any] | None = None, enqueue: bool = True
) -> CurationRound:
    """Create round n+1 of a project and queue it on the gpu worker. One unfinished round at a time."""
    cfg = round_config(config)
    if cfg["silver_labels"] == "judges":
        from curation.judges.services import judges_enabled

        if not judges_enabled():
            raise ValidationError(
                {"silver_labels": "no LLM judge is enabled: an admin adds one on the judges page, or use source labels"}
            )
    with transaction.atomic():
        # Lock the project's rounds so two admins cannot start the same round number twice.
        rounds = CurationRound.objects.select_for_update().filter(project=project)
        if rounds.filter(status__in=[CurationRound.Status.QUEUED, CurationRound.Status.RUNNING]).exists():
            raise ValidationError("a round of this project is already queued or running")
        number = (rounds.aggregate(n=Max("number"))["n"] or 0) + 1
        round_ = CurationRound.objects.create(
            project=project, number=number, config=cfg, created_by=created_by, **jobs.queued_fields()
        )
        if enqueue:
            jobs.dispatch_on_commit(ROUND, round_.pk)
    return round_


def round_resume(*, round_: CurationRound) -> CurationRound:
    """Requeue a failed round: finished steps are kept, the failed one runs again."""
    with transaction.atomic():
        updated = CurationRound.objects.filter(pk=round_.pk, status=CurationRound.Status.FAILED).update(
            status=CurationRound.Status.QUEUED, error="", **jobs.queued_fields()
        )
        if not updated:
            raise ValidationError("only a failed round can be resumed")
        jobs.dispatch_on_commit(ROUND, round_.pk)
    round_.refresh_from_db()
    return round_


# --- records -------------------------------------------------------------------------------------


def _majority_attributes(pair_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The attribute majorities of each pair's regular labels (curation.majority's rules), for embedding."""
    found: dict[int, dict[str, Any]] = {}
    for pair_id, labels in labels_by_pair(pair_ids).items():
        if labels:
            attrs = attribute_majorities(labels)
            found[pair_id] = {
                key.replace("_", " "): attrs[key]
                for key in ("task_category", "objectivity", "controversiality")
                if attrs[key] is not None
            }
    return found


def _verified(project: Project) -> dict[int, str]:
    """Verified pairs' final sides (the verdicts' owner is curation.verdicts; this is its VerifiedPair half)."""
    return dict(VerifiedPair.objects.filter(project=project).values_list("pair_id", "side"))


def _excluded_pair_ids(project: Project) -> set[int]:
    """Pairs that are neither silver training data nor retrievable: disputed or discarded."""
    return set(Dispute.objects.filter(project=project).values_list("pair_id", flat=True))


# --- the round -----------------------------------------------------------------------------------


def _step(round_id: int, key: str, **fields: Any) -> None:
    round_ = CurationRound.objects.only("steps").get(pk=round_id)
    steps = dict(round_.steps)
    steps[key] = {**steps.get(key, {}), **fields}
    CurationRound.objects.filter(pk=round_id).update(steps=steps)


def _done(round_: CurationRound, key: str) -> bool:
    return round_.steps.get(key, {}).get("status") == "done"


def round_run(*, round_id: int) -> CurationRound | None:
    """Run (or resume) a queued round. Claimed by compare-and-set; a redelivered task does nothing."""
    attempt = jobs.claim(ROUND, round_id)
    if attempt is None:
        return None
    with jobs.beating(ROUND, round_id, attempt):
        return _round_steps(round_id)


def _round_steps(round_id: int) -> CurationRound:
    step_functions = {
        "data": _step_data,
        "train": _step_train,
        "score": _step_score,
        "embed": _step_embed,
        "retrieve": _step_retrieve,
        "queue": _step_queue,
    }
    for key in CurationRound.STEPS:
        round_ = CurationRound.objects.select_related("project").get(pk=round_id)
        if _done(round_, key):
            continue
        _step(round_id, key, status="running", progress=0.0, started_at=timezone.now().isoformat())
        try:
            detail = step_functions[key](round_)
        except Exception as exc:
            logger.exception("round %s failed in step %s", round_id, key)
            _step(round_id, key, status="failed", detail=f"{type(exc).__name__}: {exc}")
            CurationRound.objects.filter(pk=round_id).update(
                status=CurationRound.Status.FAILED,
                error=f"{key}: {type(exc).__name__}: {exc}",
                finished_at=timezone.now(),
            )
            return CurationRound.objects.get(pk=round_id)
        _step(round_id, key, status="done", progress=1.0, detail=detail, finished_at=timezone.now().isoformat())
    CurationRound.objects.filter(pk=round_id).update(status=CurationRound.Status.DONE, finished_at=timezone.now())
    return CurationRound.objects.get(pk=round_id)


def _metrics(round_id: int, **values: Any) -> None:
    round_ = CurationRound.objects.only("metrics").get(pk=round_id)
    CurationRound.objects.filter(pk=round_id).update(metrics={**round_.metrics, **values})


def _step_data(round_: CurationRound) -> str:
    version = dataset_version_freeze(
        project=round_.project,
        name=f"round {round_.number}",
        gold_val_fraction=float(round_.config["gold_val_fraction"]),
        silver=str(round_.config.get("silver_labels", "source")),
        round_=round_,
        created_by=round_.created_by,
    )
    CurationRound.objects.filter(pk=round_.pk).update(dataset_version=version)
    _metrics(round_.pk, data=version.counts)
    c = version.counts
    return f"{c.get('silver', 0)} silver + {c.get('gold_train', 0)} gold pairs to train, {c.get('gold_val', 0)} gold to validate"


def _step_train(round_: CurationRound) -> str:
    version = round_.dataset_version
    if version is None:
        raise ValidationError("the data step left no dataset version")
    job = round_.training_job
    if job is None or job.status in (TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED):
        job = training_job_create(
            name=f"{round_.project.name} round {round_.number}",
            train_data=version.train_data,
            eval_data=version.eval_data,
            base_model=round_.config["base_model"],
            config={**round_.config["train"], "eval_every": round_.config["train"].get("eval_every", 0)},
            scope=_scope(round_.project),
            created_by=round_.created_by,
            enqueue=False,  # we are on the gpu worker already: train in this task
            data_source=dataset_version_source_label(version),
        )
        CurationRound.objects.filter(pk=round_.pk).update(training_job=job)
    if job.status == TrainingJob.Status.QUEUED:
        job = training_job_run(job_id=job.pk) or job
    job.refresh_from_db()
    if job.status != TrainingJob.Status.SUCCEEDED or job.model_version is None:
        raise RuntimeError(f"training job {job.pk} {job.status}: {job.error}")
    model = job.model_version
    if round_.config.get("promote_current_best"):
        model_version_promote(version=model, role="current_best")
    previous = (
        CurationRound.objects.filter(project=round_.project, number__lt=round_.number, status=CurationRound.Status.DONE)
        .order_by("-number")
        .values_list("metrics", flat=True)
        .first()
    )
    accuracy = model.eval_accuracy
    prev_accuracy = (previous or {}).get("gold_accuracy")
    CurationRound.objects.filter(pk=round_.pk).update(model_version=model)
    _metrics(
        round_.pk,
        gold_accuracy=accuracy,
        previous_gold_accuracy=prev_accuracy,
        accuracy_delta=(accuracy - prev_accuracy) if accuracy is not None and prev_accuracy is not None else None,
    )
    shown = f"{accuracy:.3f}" if accuracy is not None else "n/a (no validation pairs)"
    return f"model {model.name}: D_gold accuracy {shown}"


def _step_score(round_: CurationRound) -> str:
    model = round_.model_version
    if model is None:
        raise ValidationError("the train step left no model")
    verified = _verified(round_.project)
    scorer = reward_scorer_load(model_path=model.path)
    pair_ids = sorted(verified)
    mispredicted = 0
    for start in range(0, len(pair_ids), CHUNK):
        pairs = list(Pair.objects.filter(pk__in=pair_ids[start : start + CHUNK]).order_by("pk"))
        verdicts = verdicts_for(pairs)
        records = [pair_record(p, verdicts[p.pk], fmt="messages") for p in pairs]
        scores = scorer.score_pairs(records)
        rows = []
        for pair, r_w, r_l, p in zip(pairs, scores["r_chosen"], scores["r_rejected"], scores["p"], strict=True):
            # PairScore keeps r for canonical A and B; p is the probability of the verified label.
            r_a, r_b = (float(r_w), float(r_l)) if verified[pair.pk] == "A" else (float(r_l), float(r_w))
            rows.append(PairScore(pair=pair, model_version=model, r_a=r_a, r_b=r_b, p=float(p)))  # default length
            mispredicted += int(p <= 0.5)
        PairScore.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["pair", "model_version"],
            update_fields=["r_a", "r_b", "p", "max_length", "scored_at"],
        )
        _step(round_.pk, "score", progress=min(1.0, (start + len(pairs)) / max(1, len(pair_ids))))
    _metrics(round_.pk, n_verified=len(pair_ids), n_mispredicted=mispredicted)
    return f"{len(pair_ids)} verified pairs scored, {mispredicted} mispredicted (p ≤ 0.5)"


def _round_dir(round_: CurationRound) -> Path:
    path = Path(settings.MODEL_STORE_DIR) / "rounds" / str(round_.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pool_ids(project: Project) -> list[int]:
    """D_un for retrieval: pairs with no verification, no labels yet, and no dispute."""
    verified = set(VerifiedPair.objects.filter(project=project).values_list("pair_id", flat=True))
    excluded = _excluded_pair_ids(project) | verified
    ids = Pair.objects.filter(project=project, n_claimed=0, n_submitted=0).values_list("pk", flat=True)
    return [pk for pk in ids.iterator(chunk_size=10_000) if pk not in excluded]


def _embedder(round_: CurationRound) -> TextEmbedder:
    """The packaged MiniLM encoder, loaded once per worker process and shared by the embed and retrieve steps."""
    return text_embedder_get(batch_size=int(round_.config["embed_batch_size"]))


def _step_embed(round_: CurationRound) -> str:
    from curation.embeddings import pool_embed, pool_index_build

    embedder = _embedder(round_)
    pool = _pool_ids(round_.project)
    # Stored embeddings are reused (a pool embedded ahead by the pool_embed task, or by an earlier
    # round, costs nothing here); the index is built at once over all of them, which lets ivf train
    # its k-means on the whole pool. Exact search while the pool is small.
    done = pool_embed(
        project_id=round_.project_id,
        pair_ids=pool,
        batch_size=int(round_.config["embed_batch_size"]),
        progress=lambda fraction: _step(round_.pk, "embed", progress=0.9 * fraction),
    )
    index = pool_index_build(store=done.store, pair_ids=pool, dim=embedder.dim)
    index.save(_round_dir(round_) / "pool.index")
    _metrics(round_.pk, pool_size=len(pool), pool_embedded=done.embedded, pool_reused=done.reused)
    return (
        f"{len(pool)} unverified pairs embedded ({done.embedded} now, {done.reused} reused;"
        f" {index.kind} index, dim {embedder.dim})"
    )


def _step_retrieve(round_: CurationRound) -> str:
    from curation.retrieval import VectorIndex
    from curation.sampling import neighbours_for_probability, plan_retrieval

    k_max = int(round_.config["k_max"])
    index_path = _round_dir(round_) / "pool.index"
    index = VectorIndex.load(index_path)
    scores = dict(PairScore.objects.filter(model_version=round_.model_version).values_list("pair_id", "p"))
    verified = [(pid, float(p)) for pid, p in scores.items() if p is not None]
    wanted = [(pid, p) for pid, p in verified if neighbours_for_probability(p, k_max) > 0]
    neighbours: dict[Hashable, Sequence[tuple[Hashable, float]]] = {}
    if len(index) and wanted:
        embedder = _embedder(round_)
        attributes = _majority_attributes([pid for pid, _ in wanted])
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            pairs = {p.pk: p for p in Pair.objects.filter(pk__in=[pid for pid, _ in chunk])}
            texts = [conversation_text(pairs[pid].conversation, attributes.get(pid, {})) for pid, _ in chunk]
            # Ask for a few extra so candidates already taken by another source still leave k fresh ones.
            result = index.search(embedder.embed(texts), min(len(index), k_max * 2))
            neighbours.update(result.neighbours([pid for pid, _ in chunk]))
    plan = plan_retrieval(wanted, neighbours, k_max)
    path = _round_dir(round_) / "retrieved.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for candidate in plan:
            row = {
                "pair_id": candidate.candidate_id,
                "priority": candidate.priority,
                "sources": list(candidate.source_pair_ids),
            }
            out.write(json.dumps(row, default=int) + "\n")
    _metrics(round_.pk, n_retrieved=len(plan))
    return f"{len(plan)} distinct pairs retrieved around {len(wanted)} verified pairs (k_max {k_max})"


def _step_queue(round_: CurationRound) -> str:
    path = _round_dir(round_) / "retrieved.jsonl"
    plan = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    current = dict(Pair.objects.filter(pk__in=[row["pair_id"] for row in plan]).values_list("pk", "priority"))
    # A pair already queued higher (by an earlier round) keeps its place.
    updates = {row["pair_id"]: row["priority"] for row in plan if row["priority"] > current.get(row["pair_id"], 0.0)}
    queued = pair_set_priorities(priorities=updates)
    _metrics(round_.pk, n_queued=queued)
    detail = f"{queued} pairs moved to the front of the annotation queue"
    if round_.config.get("silver_labels") == "judges":
        detail += "; " + _send_to_judges(round_, [int(row["pair_id"]) for row in plan])
    return detail


def _send_to_judges(round_: CurationRound, pair_ids: list[int]) -> str:
    """Ask the LLM judges to label the retrieved pairs into D_silver (a ``silver`` run; once per round).

    Pairs that already carry a judge verdict are not asked again. The run's shards work on their own
    (the judges page shows the progress); the next round's data step reads the verdicts.
    """
    from curation.judges.models import JudgeRun, JudgeVerdict
    from curation.judges.services import judge_run_create

    existing = round_.metrics.get("judge_run_id")
    if existing and JudgeRun.objects.filter(pk=existing).exists():
        return f"judge run {existing} already labels the retrieved pairs"
    labelled = set(JudgeVerdict.objects.filter(pair_id__in=pair_ids).values_list("pair_id", flat=True))
    todo = [pid for pid in pair_ids if pid not in labelled]
    if not todo:
        _metrics(round_.pk, n_sent_to_judges=0)
        return "every retrieved pair already has a judge verdict"
    run = judge_run_create(
        project=round_.project, pair_ids=todo, purpose=JudgeRun.Purpose.SILVER, created_by=round_.created_by
    )
    _metrics(round_.pk, judge_run_id=run.pk, n_sent_to_judges=len(todo))
    return f"{len(todo)} sent to the LLM judges for D_silver (judge run {run.pk})"
