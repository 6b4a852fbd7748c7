"""Writes of the reward-model app: datasets, training jobs, model versions, evaluations.

torch is never imported at module level here: the ml package is imported inside the functions that
run on the GPU worker (``training_job_run``, ``evaluation_run``), so the web process stays light.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config import jobs
from rewardmodel.jobs import EVALUATION, TRAINING
from rewardmodel.models import DatasetFile, EvaluationRun, ModelVersion, TrainingJob

logger = logging.getLogger(__name__)

LOG_LIMIT = 200_000  # characters of job log kept on the row
REQUIRED_FIELDS = ("prompt", "chosen", "rejected")


def json_safe(value: Any) -> Any:
    """Metrics as strict JSON: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


# --- datasets ------------------------------------------------------------------------------------


def dataset_check(path: Path, name: str) -> tuple[str, int]:
    """Validate a pairs file; returns (sha256, records). Errors name the file, line and field."""
    digest = hashlib.sha256()
    count = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            digest.update(raw)
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValidationError(f"{name}: line {number}: invalid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise ValidationError(f"{name}: line {number}: expected a JSON object")
            for field in REQUIRED_FIELDS:
                if field not in record:
                    raise ValidationError(f"{name}: line {number}, field '{field}': is missing")
                value = record[field]
                if field != "prompt" and isinstance(value, list):
                    value = value[-1].get("content") if value and isinstance(value[-1], dict) else None
                if not value or not isinstance(value, (str, list)):
                    raise ValidationError(f"{name}: line {number}, field '{field}': must be a non-empty string")
            if "subset" in record and not isinstance(record["subset"], str):
                raise ValidationError(f"{name}: line {number}, field 'subset': must be a string")
            count += 1
    if count == 0:
        raise ValidationError(f"{name}: the file has no records")
    return digest.hexdigest(), count


def dataset_file_register(
    *, path: Path, name: str, scope: str = "", ref: str = "", created_by: Any = None, copy: bool = True
) -> DatasetFile:
    """Validate a pairs file and register it. With ``copy`` the file is copied into the model store
    so later edits of the original cannot change what a job trained on (the hash is kept too)."""
    sha, count = dataset_check(Path(path), name)
    target = Path(path)
    if copy:
        store = Path(settings.MODEL_STORE_DIR) / "datasets"
        store.mkdir(parents=True, exist_ok=True)
        target = store / f"{sha[:16]}.jsonl"
        if not target.exists():
            shutil.copyfile(path, target)
    dataset = DatasetFile(
        name=name[:200], path=str(target), sha256=sha, n_records=count, scope=scope, ref=ref, created_by=created_by
    )
    dataset.full_clean()
    dataset.save()
    return dataset


def dataset_file_from_records(
    *, records: Iterable[dict[str, Any]], name: str, scope: str = "", ref: str = ""
) -> DatasetFile:
    """Write records to the model store as JSONL and register them."""
    store = Path(settings.MODEL_STORE_DIR) / "datasets"
    store.mkdir(parents=True, exist_ok=True)
    tmp = store / f"tmp-{timezone.now().strftime('%Y%m%d%H%M%S%f')}.jsonl"
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    try:
        return dataset_file_register(path=tmp, name=name, scope=scope, ref=ref)
    finally:
        tmp.unlink(missing_ok=True)


def dataset_file_register_upload(*, upload: Any, created_by: Any = None, scope: str = "") -> DatasetFile:
    """Register an uploaded pairs file (a Django ``UploadedFile``): validated, copied into the store."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
    try:
        return dataset_file_register(path=Path(tmp.name), name=upload.name, scope=scope, created_by=created_by)
    finally:
        Path(tmp.name).unlink(missing_ok=True)


# --- the model code for other apps (curation rounds, judges): torch loads inside, on a worker ---


class PairScorer(Protocol):
    """A loaded reward model that scores preference records (``rewardmodel.ml.infer.Scorer``)."""

    def score_pairs(self, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """``{"r_chosen", "r_rejected", "p"}`` arrays in input order; ``p = sigmoid(r_chosen - r_rejected)``."""
        ...


class TextEmbedder(Protocol):
    """A sentence encoder (``rewardmodel.ml.embed.Embedder``): float32 (N, dim) unit vectors."""

    batch_size: int
    #: Identifies the encoder (model files and token limit): stored embeddings are filed under it.
    key: str

    @property
    def dim(self) -> int:
        """The embedding dimension."""
        ...

    def embed(self, texts: Sequence[str]) -> Any:
        """float32 (N, dim) embeddings of ``texts``."""
        ...


def reward_scorer_load(*, model_path: str) -> PairScorer:
    """Load the reward model at ``model_path`` for scoring (a fresh load: the weights on disk now), or, when its
    model version has a scoring server attached, a scorer that sends the pairs there (``rewardmodel.scoring``).

    Imports torch: call it on a worker, never in the web process.
    """
    from rewardmodel.scoring import remote_pair_scorer

    remote = remote_pair_scorer(model_path=model_path)
    if remote is not None:
        return remote
    from rewardmodel.ml.infer import Scorer

    return Scorer.from_pretrained(model_path)


def text_embedder_get(*, batch_size: int | None = None) -> TextEmbedder:
    """The packaged MiniLM sentence encoder, loaded once per worker process and shared by its callers.

    ``batch_size`` (when given) is set on the shared encoder. Imports torch: worker only.
    """
    from rewardmodel.ml.embed import cached_embedder

    embedder = cached_embedder()
    if batch_size is not None:
        embedder.batch_size = int(batch_size)
    return embedder


def texts_embed(texts: Sequence[str], **kwargs: Any) -> Any:
    """Embed ``texts`` with the shared packaged encoder: float32 (N, dim). ``batch_size`` may be passed.

    Imports torch: worker only.
    """
    from rewardmodel.ml.embed import embed_texts

    return embed_texts(texts, **kwargs)


def conversation_text(prompt: Any, attributes: dict[str, Any] | None = None) -> str:
    """A conversation (and its desired attributes) as the one text the encoder embeds and the model reads.

    ``prompt``: an hh transcript or a list of ``{role, content}`` messages. Imports torch: worker only.
    """
    from rewardmodel.ml.data import conversation_text as render

    return render(prompt, attributes)


# --- training ------------------------------------------------------------------------------------


def base_model_choices() -> list[tuple[str, str]]:
    """(value, label) for the configured base models: the packaged MiniLM plus RM_BASE_MODELS entries."""
    choices = [("default", "MiniLM-L6 (packaged, CPU default)")]
    for entry in settings.RM_BASE_MODELS:
        label, _, path = entry.partition("=")
        if path:
            choices.append((path, f"{label} ({path})"))
    return choices


def _validated_config(config: dict[str, Any]) -> dict[str, Any]:
    from rewardmodel.ml.config import ConfigError, RewardTrainingConfig

    try:
        return RewardTrainingConfig.from_dict(config).to_dict()
    except ConfigError as exc:
        raise ValidationError({exc.field: str(exc)}) from None


def training_config_validate(*, base_model: str, config: dict[str, Any]) -> dict[str, Any]:
    """The full training config a job on ``base_model`` would store (``"default"`` = the packaged MiniLM), or a
    ValidationError naming the offending field (e.g. ``padding_free`` asked of the packaged encoder).

    Pure (no torch): the form and the API call it before registering any upload, so bad settings change nothing.
    """
    return _validated_config({**config, "model_name_or_path": None if base_model == "default" else base_model})


def training_job_create(
    *,
    name: str,
    train_data: DatasetFile,
    eval_data: DatasetFile | None = None,
    base_model: str = "default",
    config: dict[str, Any] | None = None,
    scope: str = "",
    created_by: Any = None,
    enqueue: bool = True,
    any_base_model: bool = False,
    data_source: str = "",
    processes: int = 1,
    accelerator: str = TrainingJob.Accelerator.AUTO,
) -> TrainingJob:
    """Create a queued training job and enqueue it on the ``gpu`` queue after commit.

    Web users pick a configured base model; ``any_base_model`` (the command line, run by an operator
    on the server) accepts any checkpoint directory. ``processes`` > 1 (or an explicit ``accelerator``)
    makes the worker launch a distributed run (torchrun) as a child process group; ``accelerator="cpu"``
    runs Gloo processes on CPU cores, ``gpu`` / ``auto`` one process per GPU.
    """
    _check_processes(processes, accelerator)
    allowed = {value for value, _label in base_model_choices()}
    if any_base_model and base_model not in allowed and not (Path(base_model) / "config.json").exists():
        raise ValidationError(
            {"base_model": f"{base_model} is not a Hugging Face checkpoint directory (no config.json)"}
        )
    if not any_base_model and base_model not in allowed:
        raise ValidationError({"base_model": f"{base_model!r} is not one of the configured base models"})
    cfg = training_config_validate(base_model=base_model, config=dict(config or {}))
    with transaction.atomic():
        job = TrainingJob.objects.create(
            name=name[:200] or "reward model",
            scope=scope,
            base_model=base_model,
            train_data=train_data,
            eval_data=eval_data,
            data_source=data_source[:300],
            config=cfg,
            processes=processes,
            accelerator=accelerator,
            created_by=created_by,
            **jobs.queued_fields(),
        )
        # The random suffix keeps a job from resuming a stale checkpoint left by an earlier database.
        job.output_dir = str(Path(settings.MODEL_STORE_DIR) / "jobs" / f"{job.pk}-{uuid.uuid4().hex[:8]}")
        job.save(update_fields=["output_dir"])
        if enqueue:
            jobs.dispatch_on_commit(TRAINING, job.pk)
    return job


def _check_processes(processes: Any, accelerator: Any) -> None:
    """ValidationError naming the field unless ``processes`` is 1..MAX_PROCESSES and ``accelerator`` a choice."""
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise ValidationError({"processes": f"must be a whole number, got {processes!r}"})
    if not 1 <= processes <= TrainingJob.MAX_PROCESSES:
        raise ValidationError({"processes": f"must be between 1 and {TrainingJob.MAX_PROCESSES}, got {processes}"})
    if accelerator not in TrainingJob.Accelerator.values:
        raise ValidationError(
            {"accelerator": f"must be one of {', '.join(TrainingJob.Accelerator.values)}, got {accelerator!r}"}
        )


def _append_log(job_id: int, text: str) -> None:
    job = TrainingJob.objects.only("log").get(pk=job_id)
    log = (job.log + text + "\n")[-LOG_LIMIT:]
    TrainingJob.objects.filter(pk=job_id).update(log=log, heartbeat_at=timezone.now())


class _JobCallback:
    """Bridges the trainer's callbacks to the job row: progress, curve points, heartbeat, cancel."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id

    def _point(self, step: int, values: dict[str, Any]) -> list[dict[str, Any]]:
        job = TrainingJob.objects.only("curve").get(pk=self.job_id)
        point = {k: round(float(v), 6) for k, v in values.items() if isinstance(v, (int, float)) and v == v}
        by_step = {p["step"]: p for p in job.curve}
        by_step[step] = {**by_step.get(step, {}), **point, "step": step}
        return [by_step[k] for k in sorted(by_step)]

    def on_log(self, step: int, total_steps: int, metrics: dict[str, float]) -> bool:
        """Store the step's metrics; returning False asks the trainer to checkpoint and stop."""
        keys = ("loss", "accuracy", "mean_margin", "lr", "tokens_per_second")
        curve = self._point(step, {k: metrics[k] for k in keys if k in metrics})
        TrainingJob.objects.filter(pk=self.job_id).update(
            step=step,
            total_steps=total_steps,
            progress=min(1.0, step / total_steps) if total_steps else 0.0,
            curve=curve,
            heartbeat_at=timezone.now(),
        )
        parts = " ".join(f"{k}={float(v):.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
        _append_log(self.job_id, f"step {step}/{total_steps} {parts}")
        return not TrainingJob.objects.filter(pk=self.job_id, cancel_requested=True).exists()

    def on_eval(self, step: int, metrics: dict[str, Any] | None) -> bool:
        if not metrics:  # no evaluation set
            return True
        curve = self._point(step, {"eval_accuracy": metrics.get("accuracy"), "eval_margin": metrics.get("mean_margin")})
        TrainingJob.objects.filter(pk=self.job_id).update(curve=curve, heartbeat_at=timezone.now())
        best = " (best so far)" if metrics.get("is_best") else ""
        _append_log(self.job_id, f"eval at step {step}: accuracy {metrics.get('accuracy', float('nan')):.4f}{best}")
        return True

    def on_save(self, step: int, path: str, kind: str) -> None:
        _append_log(self.job_id, f"saved {kind} checkpoint at step {step}")


def training_job_run(*, job_id: int) -> TrainingJob | None:
    """Run a queued job on this worker. Claimed by compare-and-set, so a redelivered task is a no-op.

    Resumes from the newest checkpoint in the job's output directory when there is one. On success a
    ModelVersion is registered from the checkpoint with the best D_gold accuracy (or the final one).
    """
    attempt = jobs.claim(TRAINING, job_id, worker=socket.gethostname()[:200], error="")
    if attempt is None:
        return None
    job = TrainingJob.objects.select_related("train_data", "eval_data").get(pk=job_id)
    from rewardmodel.ml.callbacks import TrainingCancelled
    from rewardmodel.ml.config import RewardTrainingConfig
    from rewardmodel.ml.modeling import pick_device
    from rewardmodel.ml.train import train

    device = pick_device(None)
    TrainingJob.objects.filter(pk=job_id).update(device=str(device))
    config = RewardTrainingConfig.from_dict(
        {
            **job.config,
            "output_dir": job.output_dir,
            "train_file": job.train_data.path,
            "eval_file": job.eval_data.path if job.eval_data else None,
            "resume": True,
        }
    )
    if job.attempts > 1:
        _append_log(job_id, f"attempt {job.attempts}: resuming from the last checkpoint if there is one")
    if job.processes > 1 or job.accelerator != TrainingJob.Accelerator.AUTO:
        return _training_job_run_launched(job, config, attempt)
    try:
        with jobs.beating(TRAINING, job_id, attempt):
            result = train(config, callbacks=[_JobCallback(job_id)])
    except TrainingCancelled as exc:
        return _training_job_cancelled(job_id, exc.step)
    except Exception as exc:
        logger.exception("training job %s failed", job_id)
        return _training_job_failed(job_id, f"{type(exc).__name__}: {exc}")
    return _training_job_succeeded(job_id, result.to_dict())


def _training_job_run_launched(job: TrainingJob, config: Any, attempt: int) -> TrainingJob:
    """Run ``job`` as a distributed child process group (``rewardmodel.ml.launch``) and follow it.

    Rank 0's events become curve points, log lines and heartbeats through :class:`_JobCallback`; a cancel
    request is passed on through the cancel file (every rank checkpoints and stops). The launcher kills the
    whole group on failure or when this function leaves early. A worker without enough GPUs (or cores)
    refuses the job: it ends failed with a message naming what is missing, and can be resumed elsewhere.
    """
    from rewardmodel.ml.launch import ResourceError, launch

    accelerator = "cpu" if job.accelerator == TrainingJob.Accelerator.CPU else "gpu"
    TrainingJob.objects.filter(pk=job.pk).update(device=f"{job.processes} x {accelerator}")
    callback = _JobCallback(job.pk)

    def on_event(event: dict[str, Any]) -> bool | None:
        kind = event.get("event")
        if kind == "log":
            skip = ("event", "step", "total_steps")
            return callback.on_log(
                event["step"], event["total_steps"], {k: v for k, v in event.items() if k not in skip}
            )
        if kind == "eval":
            return callback.on_eval(event["step"], event.get("metrics"))
        if kind == "save":
            callback.on_save(event["step"], event["path"], event["kind"])
        return None

    _append_log(job.pk, f"launching {job.processes} {accelerator} process(es) (torchrun, {config.parallelism})")
    try:
        with jobs.beating(TRAINING, job.pk, attempt):
            outcome = launch(
                config,
                nproc=job.processes,
                accelerator=accelerator,
                run_dir=Path(job.output_dir) / "launch",
                on_event=on_event,
                cancel_now=TrainingJob.objects.filter(pk=job.pk, cancel_requested=True).exists(),
            )
    except ResourceError as exc:
        return _training_job_failed(job.pk, f"refused by this worker: {exc}")
    except Exception as exc:
        logger.exception("training job %s failed", job.pk)
        return _training_job_failed(job.pk, f"{type(exc).__name__}: {exc}")
    if outcome.status == "cancelled":
        return _training_job_cancelled(job.pk, outcome.step or 0)
    if outcome.status != "succeeded" or not outcome.result:
        _append_log(job.pk, "last lines of the distributed run:\n" + outcome.log_tail[-2000:])
        return _training_job_failed(job.pk, outcome.error or "the distributed run ended without a result")
    return _training_job_succeeded(job.pk, outcome.result)


def _training_job_cancelled(job_id: int, step: int) -> TrainingJob:
    """End a job cancelled at ``step`` (resumable: its checkpoint is kept)."""
    TrainingJob.objects.filter(pk=job_id).update(
        status=TrainingJob.Status.CANCELLED, finished_at=timezone.now(), resumable=True, cancel_requested=False
    )
    _append_log(job_id, f"cancelled by an admin at step {step}; checkpoint kept")
    return TrainingJob.objects.get(pk=job_id)


def _training_job_failed(job_id: int, message: str) -> TrainingJob:
    """End a job failed with ``message`` (resumable from its last checkpoint)."""
    TrainingJob.objects.filter(pk=job_id).update(
        status=TrainingJob.Status.FAILED, finished_at=timezone.now(), error=message, resumable=True
    )
    _append_log(job_id, f"failed: {message}")
    return TrainingJob.objects.get(pk=job_id)


def _training_job_succeeded(job_id: int, result: dict[str, Any]) -> TrainingJob:
    """Register a ModelVersion from a ``TrainResult.to_dict()`` and end the job succeeded."""
    metrics = json_safe(
        {
            "eval": result.get("final_eval") or {},
            "best_eval_accuracy": result.get("best_eval_accuracy"),
            "best_step": result.get("best_step"),
            "global_step": result.get("global_step"),
            "train_seconds": round(float(result.get("train_seconds") or 0.0), 2),
            "last": result.get("last_metrics") or {},
            "eval_history": result.get("eval_history") or [],
        }
    )
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job_id)
        version = ModelVersion.objects.create(
            name=f"{job.name}-job{job.pk}",
            scope=job.scope,
            base_model=job.base_model,
            # The checkpoint with the best D_gold accuracy when there was an eval set, else the final one.
            path=str(result.get("best_dir") or result["final_dir"]),
            data_ref=job.train_data.ref or job.train_data.name,
            data_sha256=job.train_data.sha256,
            config=job.config,
            metrics=metrics,
        )
        job.model_version = version
        job.status = TrainingJob.Status.SUCCEEDED
        job.progress = 1.0
        job.finished_at = timezone.now()
        job.resumable = False
        job.save()
    _append_log(job_id, f"registered model version {version.name}")
    job.refresh_from_db()
    return job


def training_job_cancel(*, job: TrainingJob) -> TrainingJob:
    """Cancel a queued job at once; ask a running one to stop at its next logged step."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.status == TrainingJob.Status.QUEUED:
            job.status = TrainingJob.Status.CANCELLED
            job.finished_at = timezone.now()
        elif job.status == TrainingJob.Status.RUNNING:
            job.cancel_requested = True
        else:
            raise ValidationError(f"job is {job.status}; only queued or running jobs can be cancelled")
        job.save()
    return job


def training_job_resume(*, job: TrainingJob) -> TrainingJob:
    """Requeue a failed or cancelled job; it continues from its last checkpoint."""
    with transaction.atomic():
        job = TrainingJob.objects.select_for_update().get(pk=job.pk)
        if job.status not in (TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED):
            raise ValidationError(f"job is {job.status}; only failed or cancelled jobs can be resumed")
        job.status = TrainingJob.Status.QUEUED
        job.cancel_requested = False
        job.finished_at = None
        job.error = ""
        for name, value in jobs.queued_fields().items():
            setattr(job, name, value)
        job.save()
        jobs.dispatch_on_commit(TRAINING, job.pk)
    _append_log(job.pk, "requeued; will resume from the last checkpoint")
    return job


def training_job_reap_stale(*, stale_after_s: int | None = None) -> int:
    """Mark running jobs whose worker stopped sending heartbeats as failed (and resumable).

    A worker killed mid-job cannot update its row; without this the job would read "running" forever.
    The shared lifecycle's maintenance (config/jobs.py, on beat) does this for every kind; this
    runs the training pass alone, optionally with another staleness limit.
    """
    kind = TRAINING if stale_after_s is None else replace(TRAINING, stale_after_s=lambda: stale_after_s)
    return jobs.reap(kind)["failed"]


# --- registry ------------------------------------------------------------------------------------


def model_version_promote(*, version: ModelVersion, role: str) -> ModelVersion:
    """Make ``version`` the gold or current-best model of its scope (the previous holder loses the role)."""
    field = {ModelVersion.Role.GOLD.value: "is_gold", ModelVersion.Role.CURRENT_BEST.value: "is_current_best"}.get(role)
    if field is None:
        raise ValidationError({"role": f"unknown role {role!r}; use gold or current_best"})
    with transaction.atomic():
        # Lock the scope's holders so two promotions cannot both win the unique role.
        list(ModelVersion.objects.select_for_update().filter(scope=version.scope, **{field: True}))
        ModelVersion.objects.filter(scope=version.scope, **{field: True}).exclude(pk=version.pk).update(
            **{field: False}
        )
        ModelVersion.objects.filter(pk=version.pk).update(**{field: True})
    version.refresh_from_db()
    return version


def model_version_resolve(name_or_path: str) -> tuple[str, ModelVersion | None]:
    """A registered model version by name, or a checkpoint directory path. Returns (path, version or None)."""
    version = ModelVersion.objects.filter(name=name_or_path).first()
    if version is not None:
        return version.path, version
    if (Path(name_or_path) / "config.json").exists():
        return name_or_path, None
    raise ValidationError(f"no model version named {name_or_path!r} and no checkpoint directory at that path")


def model_version_register(
    *, name: str, path: Path, base_model: str = "", scope: str = "", metrics: dict[str, Any] | None = None
) -> ModelVersion:
    """Register an existing save_pretrained directory (e.g. a model trained elsewhere)."""
    if not (Path(path) / "config.json").exists():
        raise ValidationError({"path": f"{path} is not a Hugging Face checkpoint directory (no config.json)"})
    version = ModelVersion(
        name=name, path=str(path), base_model=base_model or str(path), scope=scope, metrics=metrics or {}
    )
    version.full_clean()
    version.save()
    return version


def evaluation_create(*, version: ModelVersion, data: DatasetFile, created_by: Any = None) -> EvaluationRun:
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            model_version=version, data=data, created_by=created_by, **jobs.queued_fields()
        )
        jobs.dispatch_on_commit(EVALUATION, run.pk)
    return run


def evaluation_run(*, run_id: int) -> EvaluationRun | None:
    """Score an evaluation file with a model: accuracy overall and per subset, mean margin, best-of-N."""
    attempt = jobs.claim(EVALUATION, run_id)
    if attempt is None:
        return None
    run = EvaluationRun.objects.select_related("model_version", "data").get(pk=run_id)
    try:
        with jobs.beating(EVALUATION, run_id, attempt):
            metrics = json_safe(evaluate_file(model_path=run.model_version.path, data_path=run.data.path))
        jobs.finish(EVALUATION, run_id, attempt, EvaluationRun.Status.DONE, metrics=metrics)
    except Exception as exc:
        logger.exception("evaluation %s failed", run_id)
        jobs.finish(EVALUATION, run_id, attempt, EvaluationRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    run.refresh_from_db()
    return run


def evaluate_file(*, model_path: str, data_path: str) -> dict[str, Any]:
    """Evaluate a checkpoint on a pairs file: accuracy overall and per subset, mean margin, best-of-N.

    Runs where it is called (a worker); imports torch.
    """
    from rewardmodel.ml.data import load_records
    from rewardmodel.ml.evaluate import evaluate

    return evaluate(model_path, load_records(data_path))
