"""The stage-2 engine: a run's ledger of shards, claimed by workers, finished by a periodic finaliser.

* :func:`stage2_run_create` freezes the pool (unverified, undisputed pairs with a source label, up
  to the newest pair id at start), cuts it into shards of ``shard_size`` pairs by id range, and
  queues one task per shard (after commit; a broker outage leaves them queued for the maintenance
  pass to re-send).
* :func:`stage2_shard_run` claims a shard by compare-and-set (``config.jobs.claim``), beats its
  heartbeat, and works it in chunks: preprocessing (empty response, 13-gram contamination), scores
  of the gold and the current-best model (stored once per (pair, model version) in ``PairScore``;
  only missing ones are scored), the judges for pairs the best model does not confirm, then the
  filter rule; each chunk's results are upserted on (run, pair). Between chunks it looks at the run:
  paused or cancelled, it hands the shard back. A killed worker stops beating; the maintenance pass
  requeues the shard and the next attempt redoes it (upserts: nothing lost, nothing counted twice).
* :func:`stage2_finalise` (beat, and the last shard's worker) closes a run whose shards are all
  done: counts from the result rows, examples, the result as a dataset version. No chords.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from annotation.models import Pair, Project
from config import jobs
from curation.models import SCORE_MAX_LENGTH, PairScore
from curation.sampling import preference_probability
from curation.stage2 import rules
from curation.stage2.decontam import BenchmarkFormatError, BenchmarkIndex, parse_benchmark
from curation.stage2.jobs import SHARD
from curation.stage2.judging import judge_outcomes
from curation.stage2.models import Stage2Result, Stage2Run, Stage2Shard
from rewardmodel.models import ModelVersion
from rewardmodel.selectors import model_version_get_current_best, model_version_get_gold

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "threshold": 0.5,
    "band": 0.0,
    "policy": rules.PAPER,
    "flip_margin": 0.0,
    "shard_size": 10_000,
    "chunk_size": 1_000,
    "score_batch_size": 64,
    "max_length": SCORE_MAX_LENGTH,
    "ngram": 13,
    "include_gold": True,
    "gold_val_fraction": 0.5,
}
MIN_MAX_LENGTH = 16  # tokens per (conversation, response); the model's position limit caps it from above
LIVE_SHARDS = (Stage2Shard.Status.QUEUED, Stage2Shard.Status.RUNNING, Stage2Shard.Status.PAUSED)
EXAMPLES_PER_OUTCOME = 5


def _scope(project: Project) -> str:
    from curation.datasets import project_scope

    return project_scope(project)


def stage2_config(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults (``STAGE2_SHARD_SIZE`` for the shard size) merged with ``overrides``.

    Raises ValidationError naming the setting for an unknown key or a bad value.
    """
    config = {**DEFAULTS, "shard_size": int(getattr(settings, "STAGE2_SHARD_SIZE", DEFAULTS["shard_size"]))}
    for key, value in (overrides or {}).items():
        if key not in DEFAULTS:
            raise ValidationError({key: f"unknown stage-2 setting; known: {', '.join(DEFAULTS)}"})
        config[key] = value
    for key in ("shard_size", "chunk_size", "score_batch_size", "ngram", "max_length"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError({key: "must be a positive integer"})
    if config["max_length"] < MIN_MAX_LENGTH:
        raise ValidationError({"max_length": f"must be at least {MIN_MAX_LENGTH} tokens"})
    if not isinstance(config["include_gold"], bool):
        raise ValidationError({"include_gold": "must be true or false"})
    fraction = config["gold_val_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
        raise ValidationError({"gold_val_fraction": "must be between 0 and 1"})
    try:
        filter_config(config)
    except ValueError as exc:
        field = str(exc).split(" ", 1)[0]
        raise ValidationError({field if field in DEFAULTS else "config": str(exc)}) from None
    return config


def filter_config(config: dict[str, Any]) -> rules.FilterConfig:
    return rules.FilterConfig(
        threshold=config["threshold"], band=config["band"], policy=config["policy"], flip_margin=config["flip_margin"]
    )


# --- the pool ------------------------------------------------------------------------------------


def pool_queryset(project: Project, max_pair_id: int | None = None) -> QuerySet[Pair]:
    """Stage 2's pool: pairs with a source label, neither human-verified nor disputed (up to ``max_pair_id``)."""
    from curation.models import Dispute, VerifiedPair

    pairs = Pair.objects.filter(project=project).exclude(source_label="")
    if max_pair_id is not None:
        pairs = pairs.filter(pk__lte=max_pair_id)
    return pairs.exclude(Exists(VerifiedPair.objects.filter(pair=OuterRef("pk")))).exclude(
        Exists(Dispute.objects.filter(pair=OuterRef("pk")))
    )


def _shard_ranges(ids: Iterable[int], size: int) -> list[tuple[int, int, int]]:
    ranges: list[tuple[int, int, int]] = []
    first = last = None
    n = 0
    for pk in ids:
        if first is None:
            first = pk
        last, n = pk, n + 1
        if n == size:
            ranges.append((first, last, n))
            first, n = None, 0
    if first is not None and last is not None:
        ranges.append((first, last, n))
    return ranges


# --- benchmark files -----------------------------------------------------------------------------


def _benchmark_dir() -> Path:
    path = Path(settings.VAR_DIR) / "stage2" / "benchmarks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def benchmark_store(*, path: Path, name: str = "") -> dict[str, Any]:
    """Check a RewardBench-format file and keep a copy named by its hash; returns the run's ``benchmark`` entry.

    Raises ValidationError (``benchmark``: the line and field) for a bad file; nothing is kept then.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            prompts = parse_benchmark(handle)
    except UnicodeDecodeError:
        raise ValidationError({"benchmark": "the benchmark file is not UTF-8 text"}) from None
    except BenchmarkFormatError as exc:
        raise ValidationError({"benchmark": f"benchmark file: {exc}"}) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = _benchmark_dir() / f"{digest}.jsonl"
    if not stored.exists():
        shutil.copyfile(path, stored)
    return {"path": str(stored), "name": name or path.name, "sha256": digest, "n_prompts": len(prompts)}


_index_cache: dict[tuple[str, int], BenchmarkIndex] = {}


def _benchmark_index(benchmark: dict[str, Any] | None, n: int) -> BenchmarkIndex | None:
    """The run's benchmark n-gram set, built once per worker process."""
    if not benchmark:
        return None
    key = (benchmark["sha256"], n)
    if key not in _index_cache:
        with open(benchmark["path"], encoding="utf-8") as handle:
            _index_cache.clear()
            _index_cache[key] = BenchmarkIndex(parse_benchmark(handle), n=n)
    return _index_cache[key]


# --- services: create, pause, resume, cancel -------------------------------------------------------


def _models(
    project: Project, gold: ModelVersion | None, best: ModelVersion | None
) -> tuple[ModelVersion, ModelVersion]:
    scope = _scope(project)
    gold = gold or model_version_get_gold(scope)
    best = best or model_version_get_current_best(scope)
    if gold is None:
        raise ValidationError(
            {"gold_model": "this project has no gold reward model: train one on D_gold and promote it to gold"}
        )
    if best is None:
        raise ValidationError(
            {"best_model": "this project has no current-best reward model: run a curation round or promote one"}
        )
    for field, model in (("gold_model", gold), ("best_model", best)):
        if model.scope != scope:
            raise ValidationError({field: f"model {model.name} does not belong to this project"})
    return gold, best


@transaction.atomic
def stage2_run_create(
    *,
    project: Project,
    created_by: Any = None,
    config: dict[str, Any] | None = None,
    gold_model: ModelVersion | None = None,
    best_model: ModelVersion | None = None,
    benchmark: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> Stage2Run:
    """Start a run over the project's pool: shards written, one task per shard queued after commit.

    ``benchmark`` is what :func:`benchmark_store` returned. One unfinished run per project.
    Raises ValidationError naming the field for bad settings, missing models or an empty pool.
    """
    cfg = stage2_config(config)
    gold, best = _models(project, gold_model, best_model)
    # Lock the project's runs so two admins cannot start two runs over the same pool.
    runs = Stage2Run.objects.select_for_update().filter(project=project)
    if runs.exclude(status__in=Stage2Run.FINISHED).exists():
        raise ValidationError("a stage-2 run of this project is still running or paused: finish or cancel it first")
    if benchmark is not None:
        cfg["benchmark"] = benchmark
    max_pair_id = Pair.objects.filter(project=project).order_by("-pk").values_list("pk", flat=True).first() or 0
    ids = pool_queryset(project, max_pair_id).order_by("pk").values_list("pk", flat=True)
    ranges = _shard_ranges(ids.iterator(chunk_size=20_000), int(cfg["shard_size"]))
    if not ranges:
        raise ValidationError("the pool is empty: no unverified, undisputed pair with a source label")
    run = Stage2Run.objects.create(
        project=project,
        config=cfg,
        gold_model=gold,
        best_model=best,
        max_pair_id=max_pair_id,
        n_pairs=sum(n for _, _, n in ranges),
        n_shards=len(ranges),
        created_by=created_by,
    )
    queued = jobs.queued_fields()
    shards = Stage2Shard.objects.bulk_create(
        Stage2Shard(run=run, index=i, first_pair_id=lo, last_pair_id=hi, n_pairs=n, **queued)
        for i, (lo, hi, n) in enumerate(ranges)
    )
    if enqueue:
        ids_to_send = [s.pk for s in shards] or list(run.shards.values_list("pk", flat=True))
        transaction.on_commit(lambda: [jobs.dispatch(SHARD, pk) for pk in ids_to_send])
    return run


@transaction.atomic
def stage2_run_pause(*, run: Stage2Run) -> Stage2Run:
    """Pause: queued shards wait; running ones stop after their current chunk. Raises ValidationError if not running."""
    if not Stage2Run.objects.filter(pk=run.pk, status=Stage2Run.Status.RUNNING).update(status=Stage2Run.Status.PAUSED):
        raise ValidationError("only a running run can be paused")
    run.shards.filter(status=Stage2Shard.Status.QUEUED).update(status=Stage2Shard.Status.PAUSED)
    run.refresh_from_db()
    return run


@transaction.atomic
def stage2_run_resume(*, run: Stage2Run) -> Stage2Run:
    """Resume a paused or failed run: paused and failed shards are queued again (finished ones are kept)."""
    if not Stage2Run.objects.filter(pk=run.pk, status__in=[Stage2Run.Status.PAUSED, Stage2Run.Status.FAILED]).update(
        status=Stage2Run.Status.RUNNING, error="", finished_at=None
    ):
        raise ValidationError("only a paused or failed run can be resumed")
    again = run.shards.filter(status__in=[Stage2Shard.Status.PAUSED, Stage2Shard.Status.FAILED])
    ids = list(again.values_list("pk", flat=True))
    again.update(status=Stage2Shard.Status.QUEUED, attempts=0, error="", **jobs.queued_fields())
    transaction.on_commit(lambda: [jobs.dispatch(SHARD, pk) for pk in ids])
    run.refresh_from_db()
    return run


@transaction.atomic
def stage2_run_cancel(*, run: Stage2Run) -> Stage2Run:
    """Cancel: waiting shards end cancelled, running ones stop after their chunk; results so far are kept."""
    if not Stage2Run.objects.filter(pk=run.pk, status__in=[Stage2Run.Status.RUNNING, Stage2Run.Status.PAUSED]).update(
        status=Stage2Run.Status.CANCELLED, finished_at=timezone.now()
    ):
        raise ValidationError("only a running or paused run can be cancelled")
    run.shards.filter(status__in=[Stage2Shard.Status.QUEUED, Stage2Shard.Status.PAUSED]).update(
        status=Stage2Shard.Status.CANCELLED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


# --- the shard worker ----------------------------------------------------------------------------


def _hand_back(shard_id: int, attempt: int, run_status: str) -> None:
    """The run was paused or cancelled under us: give the shard back in the matching state."""
    status = Stage2Shard.Status.CANCELLED if run_status == Stage2Run.Status.CANCELLED else Stage2Shard.Status.PAUSED
    if not jobs.owns(SHARD, shard_id, attempt).update(status=status, heartbeat_at=None):
        return
    # Resumed between our look at the run and the hand-back: queue the shard again, or it would wait forever.
    with transaction.atomic():
        running = Stage2Run.objects.filter(shards=shard_id, status=Stage2Run.Status.RUNNING).exists()
        if running and Stage2Shard.objects.filter(pk=shard_id, status=Stage2Shard.Status.PAUSED).update(
            status=Stage2Shard.Status.QUEUED, attempts=0, **jobs.queued_fields()
        ):
            jobs.dispatch_on_commit(SHARD, shard_id)


def stage2_shard_run(*, shard_id: int) -> str | None:
    """Claim and work one shard; returns its final status, or None when there was nothing to claim.

    Idempotent: a duplicate or redelivered message finds the shard claimed or done and returns None;
    a re-claimed shard (its worker died) is worked again from the start, its upserts replacing the
    earlier attempt's rows.
    """
    attempt = jobs.claim(SHARD, shard_id, worker=f"{socket.gethostname()}:{os.getpid()}")
    if attempt is None:
        return None
    shard = Stage2Shard.objects.select_related("run", "run__project").get(pk=shard_id)
    run = shard.run
    if run.status != Stage2Run.Status.RUNNING:
        _hand_back(shard_id, attempt, run.status)
        return str(run.status)
    try:
        with jobs.beating(SHARD, shard_id, attempt):
            stopped = _work(shard, attempt)
    except Exception as exc:
        logger.exception("stage-2 shard %s failed", shard_id)
        # A deterministic error would fail every retry the same way: end it failed; resume re-queues it.
        jobs.finish(SHARD, shard_id, attempt, Stage2Shard.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        stage2_finalise(run_id=run.pk)
        return Stage2Shard.Status.FAILED
    if stopped is not None:
        _hand_back(shard_id, attempt, stopped)
        return stopped
    jobs.finish(SHARD, shard_id, attempt, Stage2Shard.Status.DONE)
    stage2_finalise(run_id=run.pk)  # the last shard's worker closes the run at once; beat is the fallback
    return Stage2Shard.Status.DONE


def _work(shard: Stage2Shard, attempt: int) -> str | None:
    """Work the shard chunk by chunk. Returns None when done, or the run's status when it stopped."""
    run = shard.run
    cfg = run.config
    fcfg = filter_config(cfg)
    index = _benchmark_index(cfg.get("benchmark"), int(cfg["ngram"]))
    pairs = pool_queryset(run.project, run.max_pair_id).filter(pk__gte=shard.first_pair_id, pk__lte=shard.last_pair_id)
    fields = ("pk", "conversation", "response_a", "response_b", "source_label")
    last, done = shard.first_pair_id - 1, 0
    while chunk := list(pairs.filter(pk__gt=last).order_by("pk").only(*fields)[: int(cfg["chunk_size"])]):
        status = Stage2Run.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        if status != Stage2Run.Status.RUNNING:
            return str(status)
        results = chunk_results(run, chunk, fcfg, index)
        with transaction.atomic():
            results_upsert(results)
            done += len(chunk)
            if not jobs.owns(SHARD, shard.pk, attempt).update(n_done=done, heartbeat_at=timezone.now()):
                raise RuntimeError("the shard was taken over by another attempt")
        last = chunk[-1].pk
    return None


RESULT_FIELDS = ("outcome", "reason", "to_judges", "judges", "p_best", "p_gold", "detail")


def results_upsert(results: list[Stage2Result]) -> None:
    """Write results, replacing the row of a pair already in the run (the upsert keyed on (run, pair)).

    On PostgreSQL one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT (run_id, pair_id) DO UPDATE``
    per call: the rows travel as one array per column (nine parameters, whatever the chunk size),
    skipping Django's per-object preparation. Elsewhere (SQLite) ``bulk_create`` with
    ``update_conflicts``, the same statement in Django's form.
    """
    if not results:
        return
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        Stage2Result.objects.bulk_create(
            results, update_conflicts=True, unique_fields=["run", "pair"], update_fields=list(RESULT_FIELDS)
        )
        return
    table = connection.ops.quote_name(Stage2Result._meta.db_table)
    updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in RESULT_FIELDS)
    sql = (
        f"INSERT INTO {table} (run_id, pair_id, {', '.join(RESULT_FIELDS)}) "
        "SELECT r, p, o, re, tj, j, pb, pg, d::jsonb FROM unnest("
        "%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::boolean[], %s::text[], "
        "%s::float8[], %s::float8[], %s::text[]) AS t(r, p, o, re, tj, j, pb, pg, d) "
        f"ON CONFLICT (run_id, pair_id) DO UPDATE SET {updates}"
    )
    columns: list[list[Any]] = [[] for _ in range(9)]
    for r in results:
        detail = None if r.detail is None else json.dumps(r.detail, ensure_ascii=False)
        row = (r.run_id, r.pair_id, r.outcome, r.reason, r.to_judges, r.judges, r.p_best, r.p_gold, detail)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    with connection.cursor() as cursor:
        cursor.execute(sql, columns)


def _text(conversation: Any) -> str:
    if isinstance(conversation, list):
        return "\n".join(str(m.get("content", "")) for m in conversation if isinstance(m, dict))
    return str(conversation)


def chunk_results(
    run: Stage2Run, chunk: list[Pair], fcfg: rules.FilterConfig, index: BenchmarkIndex | None
) -> list[Stage2Result]:
    """The results of one chunk of pool pairs (not saved): preprocessing, scores, judges, the rule."""
    results: list[Stage2Result] = []
    live: list[Pair] = []
    for pair in chunk:
        if not pair.response_a.strip() or not pair.response_b.strip():
            results.append(Stage2Result(run=run, pair=pair, outcome="dropped", reason="empty"))
            continue
        found = index.match(_text(pair.conversation)) if index is not None else None
        if found is not None:
            results.append(
                Stage2Result(run=run, pair=pair, outcome="dropped", reason="contaminated", detail=found.as_dict())
            )
            continue
        live.append(pair)
    if not live:
        return results
    batch = int(run.config.get("score_batch_size", 64))
    max_length = run.config.get("max_length")  # runs started before it was a setting: the scorer's default
    # Gold then best over the same pair objects: the second call reuses the first's token ids when the
    # two models share a tokenizer (rewardmodel.ml.infer's encoding memo), so a chunk is tokenised once.
    gold = scores_ensure(model=run.gold_model, pairs=live, batch_size=batch, max_length=max_length)
    best = scores_ensure(model=run.best_model, pairs=live, batch_size=batch, max_length=max_length)
    p_gold = {p.pk: _p_label(gold[p.pk], p.source_label) for p in live}
    p_best = {p.pk: _p_label(best[p.pk], p.source_label) for p in live}
    asked = {p.pk: p.source_label for p in live if rules.needs_judges(p_best[p.pk], fcfg)}
    answers = judge_outcomes(asked)
    for pair in live:
        decision = rules.decide(p_best[pair.pk], p_gold[pair.pk], answers.get(pair.pk, rules.JUDGE_NONE), fcfg)
        results.append(
            Stage2Result(
                run=run,
                pair=pair,
                outcome=decision.outcome,
                to_judges=decision.to_judges,
                judges=decision.judges if decision.to_judges else "",
                p_best=p_best[pair.pk],
                p_gold=p_gold[pair.pk],
            )
        )
    return results


def _p_label(scores: tuple[float, float], label: str) -> float:
    r_a, r_b = scores
    chosen, rejected = (r_a, r_b) if label == "A" else (r_b, r_a)
    return float(preference_probability(chosen, rejected))


def scores_ensure(
    *, model: ModelVersion, pairs: list[Pair], batch_size: int = 64, max_length: int | None = None
) -> dict[int, tuple[float, float]]:
    """``(r_a, r_b)`` of each pair under ``model``: stored scores are reused, only missing ones are scored
    (through ``rewardmodel.scoring``, ``max_length`` tokens per sequence, None = the scorer's default) and
    stored with the one upsert keyed on (pair, model version). A stored score computed with another
    ``max_length`` is not reused: the pair is scored again and its row replaced."""
    from curation.scores import pair_scores_store

    ids = [p.pk for p in pairs]
    length = SCORE_MAX_LENGTH if max_length is None else int(max_length)
    found = {
        pid: (r_a, r_b)
        for pid, r_a, r_b in PairScore.objects.filter(
            model_version=model, pair_id__in=ids, max_length=length
        ).values_list("pair_id", "r_a", "r_b")
    }
    missing = [p for p in pairs if p.pk not in found]
    if missing:
        from rewardmodel.scoring import pairs_score

        scored = pairs_score(
            model_path=model.path,
            items=[(p.conversation, p.response_a, p.response_b) for p in missing],
            batch_size=batch_size,
            max_length=max_length,
        )
        rows = [(p.pk, r_a, r_b) for p, (r_a, r_b) in zip(missing, scored, strict=True)]
        pair_scores_store(model_version_id=model.pk, scores=rows, max_length=length)
        found.update({pid: (r_a, r_b) for pid, r_a, r_b in rows})
    return found


# --- the finaliser -------------------------------------------------------------------------------


def stage2_finalise(*, run_id: int) -> Stage2Run | None:
    """Close the run once no shard is left to work: done (summary, dataset version) or failed.

    Claimed by compare-and-set (running -> finalising), so the beat task and the last shard's worker
    never both finalise; a finaliser that died is taken over once ``STAGE2_STALE_AFTER_S`` passed.
    Returns the run when this call closed it, else None.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=SHARD.stale_after_s())
    unfinished = Stage2Shard.objects.filter(run=OuterRef("pk"), status__in=LIVE_SHARDS)
    claimable = Stage2Run.objects.filter(pk=run_id).filter(
        Q(status=Stage2Run.Status.RUNNING) | Q(status=Stage2Run.Status.FINALISING, finalising_at__lt=stale)
    )
    if not claimable.exclude(Exists(unfinished)).update(status=Stage2Run.Status.FINALISING, finalising_at=now):
        return None
    run = Stage2Run.objects.select_related("project").get(pk=run_id)
    failed = list(run.shards.filter(status=Stage2Shard.Status.FAILED).values_list("index", "error")[:3])
    try:
        with transaction.atomic():  # a failed query must not abort an enclosing transaction
            _close(run, now, failed)
    except Exception as exc:
        logger.exception("finalising stage-2 run %s failed", run_id)
        Stage2Run.objects.filter(pk=run_id, finalising_at=now).update(
            status=Stage2Run.Status.FAILED, error=f"finalising: {type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
    return Stage2Run.objects.get(pk=run_id)


def _close(run: Stage2Run, claimed_at: Any, failed: list[tuple[int, str]]) -> None:
    summary = stage2_summary(run)
    mine = Stage2Run.objects.filter(pk=run.pk, finalising_at=claimed_at)
    if failed:
        n_failed = run.shards.filter(status=Stage2Shard.Status.FAILED).count()
        errors = "; ".join(f"shard {i}: {e}" for i, e in failed)
        mine.update(
            status=Stage2Run.Status.FAILED,
            summary=summary,
            finished_at=timezone.now(),
            error=f"{n_failed} shard(s) failed ({errors}); resume re-runs them",
        )
        return
    from curation.stage2.dataset import stage2_dataset_freeze

    outcomes = summary["outcomes"]
    version = stage2_dataset_freeze(run=run) if outcomes.get("kept", 0) + outcomes.get("flipped", 0) else None
    mine.update(status=Stage2Run.Status.DONE, summary=summary, dataset_version=version, finished_at=timezone.now())


def stage2_finalise_all() -> int:
    """Beat: finalise every run whose shards are all finished (and take over stale finalisers). Returns runs closed."""
    ids = Stage2Run.objects.filter(status__in=[Stage2Run.Status.RUNNING, Stage2Run.Status.FINALISING]).values_list(
        "pk", flat=True
    )
    return sum(1 for pk in list(ids) if stage2_finalise(run_id=pk) is not None)


# --- figures -------------------------------------------------------------------------------------


def _category() -> Any:
    return Coalesce(
        NullIf(KeyTextTransform("task_category", "pair__metadata__attributes"), Value("")),
        NullIf(KeyTextTransform("task_category", "pair__metadata"), Value("")),
        NullIf("pair__subset", Value("")),
        output_field=TextField(),
    )


def stage2_summary(run: Stage2Run) -> dict[str, Any]:
    """Counts by outcome, by drop reason, of pairs sent to the judges and their answers, by source and
    by task category (a label's attribute if the pair carries one, else its subset), examples, and the
    human-agreement table on D_gold pairs with a source label (``agreement``; None without such pairs)."""
    from curation.stage2.agreement import stage2_agreement

    results = Stage2Result.objects.filter(run=run)
    outcomes = Counter(dict(results.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n")))
    reasons = Counter(
        dict(results.exclude(reason="").values_list("reason").annotate(n=Count("pk")).values_list("reason", "n"))
    )
    judged = results.filter(to_judges=True)
    judges = dict(judged.values_list("judges").annotate(n=Count("pk")).values_list("judges", "n"))

    def by(expr: Any) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for key, outcome, n in results.annotate(k=expr).values_list("k", "outcome").annotate(n=Count("pk")):
            table.setdefault(key or "—", {})[outcome] = n
        return dict(sorted(table.items()))

    examples = {
        outcome: list(results.filter(outcome=outcome).order_by("pair_id").values_list("pair_id", flat=True)[:EXAMPLES_PER_OUTCOME])
        for outcome in outcomes
    }  # fmt: skip
    shards = Counter(dict(run.shards.values_list("status").annotate(n=Count("pk")).values_list("status", "n")))
    return {
        "n_pool": run.n_pairs,
        "n_results": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "dropped_by_reason": dict(reasons),
        "to_judges": judged.count(),
        "judges": judges,
        "by_source": by(NullIf("pair__source", Value(""))),
        "by_category": by(_category()),
        "examples": examples,
        "shards": dict(shards),
        "policy": run.config.get("policy"),
        "agreement": stage2_agreement(run),
    }


def stage2_progress(run: Stage2Run) -> dict[str, Any]:
    """Live progress for the run page: shards by status and pairs done (from the shards' own counters)."""
    shards = run.shards.values_list("status", "n_done", "n_pairs")
    by_status: Counter[str] = Counter()
    done = 0
    for status, n_done, n_pairs in shards:
        by_status[status] += 1
        done += n_pairs if status == Stage2Shard.Status.DONE else min(n_done, n_pairs)
    return {
        "shards": dict(by_status),
        "pairs_done": done,
        "n_pairs": run.n_pairs,
        "fraction": done / run.n_pairs if run.n_pairs else 1.0,
    }


def stage2_retrain(*, run: Stage2Run, created_by: Any = None) -> Any:
    """Queue a training job (gpu queue) that fine-tunes the run's current-best model on the run's dataset version.

    Raises ValidationError when the run has no dataset version (not done, or nothing kept or flipped).
    """
    from curation.datasets import dataset_version_source_label
    from rewardmodel.services import training_job_create

    version = run.dataset_version
    if run.status != Stage2Run.Status.DONE or version is None:
        raise ValidationError("this run has no result to train on (it is not done, or kept and flipped nothing)")
    job = training_job_create(
        name=f"{run.project.name} stage 2 run {run.pk} (from {run.best_model.name})",
        train_data=version.train_data,
        eval_data=version.eval_data,
        base_model=run.best_model.path,
        any_base_model=True,  # the registry's own checkpoint, not a path a user typed
        config=dict(RETRAIN_CONFIG),
        scope=_scope(run.project),
        created_by=created_by,
        data_source=dataset_version_source_label(version),
    )
    Stage2Run.objects.filter(pk=run.pk).update(training_job=job)
    return job


RETRAIN_CONFIG: dict[str, Any] = {"num_epochs": 1, "batch_size": 16, "learning_rate": 3e-5, "max_length": 256}
