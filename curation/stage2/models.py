"""The stage-2 ledger: a run, its shards and one result row per (run, pair).

Imported by ``curation.models`` so Django registers these models under the ``curation`` app.

Invariants (kept by :mod:`curation.stage2.engine`):
- a run's shards cover its pool exactly once: disjoint pair-id ranges ``[first_pair_id, last_pair_id]``;
- a shard is worked by one attempt at a time (the shared compare-and-set claim in ``config.jobs``);
  a shard whose worker died is re-claimed by the next attempt;
- a pair has at most one :class:`Stage2Result` per run (unique constraint; writes are upserts), so a
  shard worked twice never counts a pair twice, and the run's figures are counted from these rows;
- scores live once per (pair, model version) in :class:`curation.models.PairScore` and are reused.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from config.jobs import JobFields


class Stage2Run(models.Model):
    """One pass of stage 2 over a project's unverified pool with a gold and a current-best model."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        FINALISING = "finalising", "Finalising"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    FINISHED = (Status.DONE, Status.CANCELLED, Status.FAILED)

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    config = models.JSONField(default=dict, help_text="Filter rule, policy, shard size, benchmark (see engine).")
    gold_model = models.ForeignKey("rewardmodel.ModelVersion", on_delete=models.PROTECT, related_name="+")
    best_model = models.ForeignKey("rewardmodel.ModelVersion", on_delete=models.PROTECT, related_name="+")
    max_pair_id = models.BigIntegerField(default=0, help_text="The pool is frozen at the pairs that existed at start.")
    n_pairs = models.PositiveIntegerField(default=0)
    n_shards = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts by outcome, category and source (final).")
    dataset_version = models.ForeignKey(
        "curation.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    training_job = models.ForeignKey(
        "rewardmodel.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    finalising_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Stage-2 run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class Stage2Shard(JobFields):
    """A contiguous range of the pool's pair ids, claimed and worked by one worker at a time."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(Stage2Run, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    first_pair_id = models.BigIntegerField()
    last_pair_id = models.BigIntegerField()
    n_pairs = models.PositiveIntegerField()
    n_done = models.PositiveIntegerField(default=0, help_text="Pairs with a result from the current attempt's view.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the attempt holding it.")
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="stage2shard_index_per_run")]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="stage2shard_claim_idx")]

    def __str__(self) -> str:
        return f"Shard {self.index} of run {self.run_id} ({self.status})"


class Stage2Result(models.Model):
    """What stage 2 decided about one pair in one run (written by an idempotent upsert)."""

    class Outcome(models.TextChoices):
        KEPT = "kept", "Kept"
        FLIPPED = "flipped", "Flipped"
        DISCARDED = "discarded", "Discarded"
        DROPPED = "dropped", "Dropped in preprocessing"

    class Reason(models.TextChoices):
        NONE = "", "—"
        EMPTY = "empty", "Empty response"
        CONTAMINATED = "contaminated", "Prompt shares a 13-gram with the benchmark"

    run = models.ForeignKey(Stage2Run, on_delete=models.CASCADE, related_name="results")
    pair = models.ForeignKey("annotation.Pair", on_delete=models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=16, choices=Reason.choices, blank=True, default="")
    to_judges = models.BooleanField(default=False)
    judges = models.CharField(max_length=10, blank=True, default="", help_text="The judges' answer, when asked.")
    p_best = models.FloatField(null=True, blank=True)
    p_gold = models.FloatField(null=True, blank=True)
    detail = models.JSONField(null=True, blank=True, help_text="Why it was dropped (the shared n-gram).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "pair"], name="stage2result_one_per_pair")]
        indexes = [models.Index(fields=["run", "outcome"], name="stage2result_outcome_idx")]

    def __str__(self) -> str:
        return f"Pair {self.pair_id} in run {self.run_id}: {self.outcome}"
