"""Reward-model registry: training data files, training jobs, model versions and evaluations.

This app knows nothing of annotation: it trains on and scores files that curation (or an admin)
hands it. ``scope`` is a free label (curation uses ``project:<id>``) under which the gold and
current-best roles are unique.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from config.jobs import JobFields


class DatasetFile(models.Model):
    """A JSON Lines file of pairs (prompt, chosen, rejected[, subset]) that jobs can train or evaluate on."""

    name = models.CharField(max_length=200)
    path = models.CharField(max_length=1000)
    sha256 = models.CharField(max_length=64)
    n_records = models.PositiveIntegerField()
    scope = models.CharField(max_length=100, blank=True)
    ref = models.CharField(max_length=200, blank=True, help_text="Where it came from, e.g. dataset-version:12.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.n_records} pairs)"


class ScoringServer(models.Model):
    """External scoring servers of one model (vLLM ``/classify`` or SGLang ``/classify``), one base URL per GPU.

    A model version with a server attached is scored through it (``rewardmodel.scoring.pairs_score``) instead of
    being loaded in-process; the worker still reads the version's tokenizer to format the texts. The API key is
    write-only (never rendered, logged or returned by the API); ``api_key_env`` / ``api_key_file`` are preferred.
    """

    class Kind(models.TextChoices):
        VLLM = "vllm", "vLLM (/classify, pooling runner)"
        SGLANG = "sglang", "SGLang (/classify, --is-embedding)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.VLLM)
    base_urls = models.TextField(
        help_text="One base URL per line, one per GPU, e.g. http://gpu1:8000 (the server root, not /v1)."
    )
    served_model = models.CharField(
        max_length=300, help_text="The model name the server answers to (vLLM --served-model-name; SGLang's path)."
    )
    api_key = models.CharField(max_length=500, blank=True, help_text="Write-only; never shown again.")
    api_key_env = models.CharField(max_length=100, blank=True, help_text="Environment variable holding the key.")
    api_key_file = models.CharField(max_length=300, blank=True, help_text="Path of a file holding the key.")
    batch_size = models.PositiveIntegerField(
        default=32, validators=[MinValueValidator(1), MaxValueValidator(4096)], help_text="Texts per request."
    )
    concurrency = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(256)], help_text="Requests in flight per server."
    )
    timeout_s = models.FloatField(
        default=120.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)], help_text="Seconds per request."
    )
    max_retries = models.PositiveSmallIntegerField(
        default=4,
        validators=[MaxValueValidator(20)],
        help_text="Retries of a batch after 429, 408, 5xx, timeouts and refused connections.",
    )
    check_saturation = models.BooleanField(
        default=True,
        help_text="Refuse responses whose scores all lie in [0, 1] (a server applying a sigmoid).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def url_list(self) -> list[str]:
        return [u.strip() for u in self.base_urls.splitlines() if u.strip()]

    @property
    def has_key(self) -> bool:
        return bool(self.api_key or self.api_key_env or self.api_key_file)


class ModelVersion(models.Model):
    class Role(models.TextChoices):
        NONE = "", "None"
        GOLD = "gold", "Gold (human-verified data only)"
        CURRENT_BEST = "current_best", "Current best"

    name = models.CharField(max_length=200, unique=True)
    scope = models.CharField(max_length=100, blank=True)
    base_model = models.CharField(max_length=1000)
    path = models.CharField(max_length=1000, help_text="A save_pretrained directory.")
    data_ref = models.CharField(max_length=300, blank=True)
    data_sha256 = models.CharField(max_length=64, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    is_gold = models.BooleanField(default=False)
    is_current_best = models.BooleanField(default=False)
    scoring_server = models.ForeignKey(
        ScoringServer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
        help_text="Score this version on these servers instead of loading it in-process.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope"], condition=Q(is_gold=True), name="modelversion_one_gold_per_scope"
            ),
            models.UniqueConstraint(
                fields=["scope"], condition=Q(is_current_best=True), name="modelversion_one_current_best_per_scope"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def eval_accuracy(self) -> float | None:
        """Accuracy on the evaluation set (D_gold) of the checkpoint kept: the best one when there was an eval set."""
        if not isinstance(self.metrics, dict):
            return None
        value = self.metrics.get("best_eval_accuracy")
        if value is None:
            value = (self.metrics.get("eval") or {}).get("accuracy")
        return float(value) if value is not None else None


class TrainingJob(JobFields):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Accelerator(models.TextChoices):
        AUTO = "auto", "Auto (GPU when the worker has one; 1 process)"
        GPU = "gpu", "GPUs (one process per GPU)"
        CPU = "cpu", "CPU processes (Gloo; tests and small models)"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    MAX_PROCESSES = 64

    name = models.CharField(max_length=200)
    scope = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    base_model = models.CharField(max_length=1000)
    train_data = models.ForeignKey(DatasetFile, on_delete=models.PROTECT, related_name="training_jobs")
    eval_data = models.ForeignKey(
        DatasetFile, null=True, blank=True, on_delete=models.PROTECT, related_name="eval_jobs"
    )
    data_source = models.CharField(
        max_length=300,
        blank=True,
        help_text="What the job trained on when it was not a file picked by hand, e.g. 'dataset-version:12 (Demo D_gold)'.",
    )
    config = models.JSONField(default=dict, help_text="RewardTrainingConfig as JSON.")
    processes = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_PROCESSES)],
        help_text="Training processes on one worker (one per GPU); > 1 launches torchrun as a child process group.",
    )
    accelerator = models.CharField(max_length=8, choices=Accelerator.choices, default=Accelerator.AUTO)
    output_dir = models.CharField(max_length=1000, blank=True)
    progress = models.FloatField(default=0.0)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    curve = models.JSONField(default=list, blank=True, help_text="[{step, loss, accuracy, margin, lr, eval_accuracy?}]")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    device = models.CharField(max_length=100, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    resumable = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_job"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="trainingjob_stale_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration_s(self) -> float | None:
        if not self.started_at:
            return None
        from django.utils import timezone

        end = self.finished_at or timezone.now()
        return (end - self.started_at).total_seconds()


class EvaluationRun(JobFields):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    data = models.ForeignKey(DatasetFile, on_delete=models.PROTECT, related_name="evaluations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def __str__(self) -> str:
        return f"Evaluation of {self.model_version} on {self.data}"
