"""Stage-1 curation state: agreement figures, the batch gate, D_gold, disputes, retests, RM scores.

A *batch* is the unit of quality control. It is named by a ``batch_key``: ``"import:<id>"`` for
the pairs of one annotation ImportBatch (``"import:none"`` for pairs whose import was deleted);
a curation round will add ``"round:<id>"`` keys. Every table that is per batch stores the key,
so rounds need no schema change here (``BatchGate.round_id`` is kept for the round's own FK).

Invariants (kept by ``curation/gate.py`` and ``curation/disputes.py``):
- a pair has at most one Dispute and at most one VerifiedPair;
- a VerifiedPair exists only for a complete pair whose BatchGate is open (``ok`` or ``accepted``)
  at the time it was created, and either had a clean majority (``via=majority``) or a lead's
  final label (``via=lead``); a pair whose dispute is discarded has no VerifiedPair;
- DisputeResolution rows are never updated or deleted: the latest one is the decision.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from annotation import preference as codes
from config.jobs import JobFields


def default_alpha_threshold() -> float:
    return float(getattr(settings, "CURATION_ALPHA_THRESHOLD", 0.85))


def default_retest_rate() -> float:
    return float(getattr(settings, "CURATION_RETEST_RATE", 0.05))


def default_gate_min_units() -> int:
    return int(getattr(settings, "CURATION_GATE_MIN_UNITS", 20))


class Side(models.TextChoices):
    """A verdict's side, spelled as annotation.preference spells it (which also parses and builds codes)."""

    A = codes.A, "A"
    B = codes.B, "B"


class Strength(models.TextChoices):
    CLEARLY = codes.CLEARLY, "clearly"
    SLIGHTLY = codes.SLIGHTLY, "slightly"


class CurationSettings(models.Model):
    """A project's quality-control rules. Created with defaults the first time curation needs them."""

    class SplitRule(models.TextChoices):
        NONE = "none", "Only when there is no majority"
        STRENGTH = "strength", "When a minority says the other side is clearly better and the majority only slightly"
        ANY = "any", "On any dissent: every decided label must pick the same side"

    project = models.OneToOneField("annotation.Project", on_delete=models.CASCADE, related_name="curation_settings")
    alpha_threshold = models.FloatField(
        default=default_alpha_threshold,
        validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)],
        help_text="A batch's preference alpha must reach this before its pairs become human-verified.",
    )
    gate_min_units = models.PositiveIntegerField(
        default=default_gate_min_units,
        help_text="Complete pairs a batch needs before its alpha is trusted (a whole batch smaller than this is judged once it is complete).",
    )
    retest_rate = models.FloatField(
        default=default_retest_rate,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of verified pairs re-labelled double-blind by an annotator who has not seen them.",
    )
    dispute_on_undecidable = models.BooleanField(
        default=True, help_text='Open a dispute when any label says "can\'t decide".'
    )
    split_rule = models.CharField(max_length=16, choices=SplitRule.choices, default=SplitRule.STRENGTH)
    dispute_on_high_controversiality = models.BooleanField(
        default=False, help_text="Open a dispute when most annotators rate the pair highly controversial."
    )
    auto_discard_undecidable = models.BooleanField(
        default=True,
        help_text="Discard a pair every annotator marked \"can't decide\" without lead review (the protocol's rule).",
    )
    # Debounced recomputation of the project-wide and per-annotator figures (services.agreement_request).
    agreement_requested_seq = models.PositiveBigIntegerField(default=0, editable=False)
    agreement_computed_seq = models.PositiveBigIntegerField(default=0, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "curation settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(alpha_threshold__gte=-1.0) & Q(alpha_threshold__lte=1.0), name="curation_threshold_range"
            ),
            models.CheckConstraint(
                condition=Q(retest_rate__gte=0.0) & Q(retest_rate__lte=1.0), name="curation_retest_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Curation settings of project {self.project_id}"


class AgreementSnapshot(models.Model):
    """One computation of Krippendorff's alpha for one scope; a new row each time, so charts show history.

    ``figures`` for project/batch/round scopes: ``{"preference": a, "objectivity": a,
    "task_category": a, "controversiality": a, "desired_attributes": {name: a}}`` (``a`` a float or
    null when undefined). For the annotator scope: ``{"agreement_rate", "alpha_all",
    "alpha_without", "alpha_delta", "n_decided", "n_compared", "retest": {n, agree, rate}}``.
    """

    class Scope(models.TextChoices):
        PROJECT = "project", "Project"
        BATCH = "batch", "Batch"
        ROUND = "round", "Round"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    scope_key = models.CharField(max_length=64, blank=True, help_text="Batch key, or the annotator's user id.")
    figures = models.JSONField(default=dict)
    n_units = models.PositiveIntegerField(default=0)
    n_labels = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["project", "scope", "scope_key", "-computed_at"], name="snapshot_history_idx")]

    def __str__(self) -> str:
        return f"{self.scope} {self.scope_key} alpha at {self.computed_at:%Y-%m-%d %H:%M}"

    @property
    def preference_alpha(self) -> float | None:
        value = self.figures.get("preference") if isinstance(self.figures, dict) else None
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


class BatchGate(models.Model):
    """The gate of one batch: its latest preference alpha against the project's threshold."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for labels"  # alpha undefined, or too few complete pairs yet
        OK = "ok", "Passed"
        FLAGGED = "flagged", "Below threshold"
        ACCEPTED = "accepted", "Accepted by a lead"  # below threshold, let through with a note

    OPEN = (Status.OK, Status.ACCEPTED)

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    batch_key = models.CharField(max_length=64)
    import_batch = models.ForeignKey(
        "annotation.ImportBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    round_id = models.PositiveBigIntegerField(null=True, blank=True, help_text="The curation round, for round batches.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    alpha = models.FloatField(null=True, blank=True, help_text="Preference alpha (ordinal) at the last computation.")
    threshold = models.FloatField(null=True, blank=True, help_text="The threshold it was compared with.")
    figures = models.JSONField(default=dict, blank=True, help_text="All dimensions at the last computation.")
    n_units = models.PositiveIntegerField(default=0)
    n_labels = models.PositiveIntegerField(default=0)
    n_pairs = models.PositiveIntegerField(default=0)
    n_complete = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    labels_read_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last computation began reading labels: it saw every earlier one."
    )
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    accept_note = models.TextField(blank=True)
    # Debounce: a request bumps requested_seq; a computation records the requested_seq it started from.
    requested_seq = models.PositiveBigIntegerField(default=0, editable=False)
    computed_seq = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["project", "batch_key"]
        constraints = [models.UniqueConstraint(fields=["project", "batch_key"], name="batchgate_one_per_batch")]

    def __str__(self) -> str:
        return f"Gate {self.batch_key} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_below_threshold(self) -> bool:
        return self.alpha is not None and self.threshold is not None and self.alpha < self.threshold


class VerifiedPair(models.Model):
    """A pair in D_gold (human-verified): its final label and how it was reached."""

    class Via(models.TextChoices):
        MAJORITY = "majority", "Annotator majority"
        LEAD = "lead", "Lead resolution"

    class Pool(models.TextChoices):
        GOLD = "gold", "D_gold (human-verified)"
        SILVER = "silver", "D_silver (LLM-verified)"  # written by curation rounds, not by stage-1 review

    class RetestStatus(models.TextChoices):
        UNDRAWN = "", "Not drawn yet"
        NOT_SELECTED = "not_selected", "Not selected"
        OFFERED = "offered", "Offered"
        NO_ANNOTATOR = "no_annotator", "Selected, no eligible annotator"

    pair = models.OneToOneField("annotation.Pair", on_delete=models.CASCADE, related_name="verification")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    batch_key = models.CharField(max_length=64)
    side = models.CharField(max_length=1, choices=Side.choices)
    strength = models.CharField(max_length=8, choices=Strength.choices)
    via = models.CharField(max_length=16, choices=Via.choices)
    pool = models.CharField(max_length=8, choices=Pool.choices, default=Pool.GOLD)
    votes = models.JSONField(default=dict, blank=True, help_text='{"A": n, "B": n, "undecidable": n}')
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    verified_at = models.DateTimeField()
    retest_status = models.CharField(max_length=16, choices=RetestStatus.choices, blank=True, default="")
    retest_offered_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retest_offered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pair_id"]
        constraints = [
            models.CheckConstraint(condition=Q(side__in=["A", "B"]), name="verifiedpair_side_valid"),
            models.CheckConstraint(
                condition=Q(strength__in=["clearly", "slightly"]), name="verifiedpair_strength_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "pool", "pair"], name="verifiedpair_pool_idx"),
            models.Index(fields=["project", "batch_key", "retest_status"], name="verifiedpair_retest_idx"),
        ]

    def __str__(self) -> str:
        return f"Pair {self.pair_id}: {self.preference} ({self.via})"

    @property
    def preference(self) -> str:
        """The canonical preference code, e.g. ``A_CLEARLY``."""
        return codes.build(self.side, self.strength)


class Dispute(models.Model):
    """A pair the annotators' labels do not settle; it waits in the lead's queue."""

    class Reason(models.TextChoices):
        NO_MAJORITY = "no_majority", "No majority"
        UNDECIDABLE = "undecidable", "Can't decide"
        STRENGTH_SPLIT = "strength_split", "Clearly against slightly"
        DISSENT = "dissent", "Not unanimous"
        HIGH_CONTROVERSIALITY = "high_controversiality", "Rated highly controversial"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        DISCARDED = "discarded", "Discarded"

    pair = models.OneToOneField("annotation.Pair", on_delete=models.CASCADE, related_name="dispute")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    batch_key = models.CharField(max_length=64)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    votes = models.JSONField(default=dict, blank=True, help_text='{"A": n, "B": n, "undecidable": n}')
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["project", "status", "-id"], name="dispute_queue_idx")]

    def __str__(self) -> str:
        return f"Dispute on pair {self.pair_id} ({self.status})"


class DisputeResolution(models.Model):
    """One decision on a dispute. Never edited: a later decision is a new row (the latest counts)."""

    class Decision(models.TextChoices):
        A_CLEARLY = "A_CLEARLY", "A is clearly better"
        A_SLIGHTLY = "A_SLIGHTLY", "A is slightly better"
        B_SLIGHTLY = "B_SLIGHTLY", "B is slightly better"
        B_CLEARLY = "B_CLEARLY", "B is clearly better"
        DISCARD = "DISCARD", "Discard the pair"

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="resolutions")
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for an automatic decision (every annotator said can't decide).",
    )
    decision = models.CharField(max_length=16, choices=Decision.choices)
    note = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.decision} on dispute {self.dispute_id}"

    @property
    def is_discard(self) -> bool:
        return self.decision == self.Decision.DISCARD


class RetestResult(models.Model):
    """A double-blind retest label compared with the pair's verified label."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    pair = models.ForeignKey("annotation.Pair", on_delete=models.CASCADE, related_name="retest_results")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    annotation = models.OneToOneField("annotation.Annotation", on_delete=models.CASCADE, related_name="retest_result")
    retest_preference = models.CharField(max_length=16)
    verified_side = models.CharField(max_length=1, choices=Side.choices)
    verified_strength = models.CharField(max_length=8, choices=Strength.choices)
    agrees = models.BooleanField(help_text="Same side as the verified label (can't decide counts as not agreeing).")
    agrees_strength = models.BooleanField(help_text="Same side and same strength.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["project", "annotator"], name="retest_annotator_idx")]

    def __str__(self) -> str:
        return f"Retest of pair {self.pair_id} by {self.annotator_id}: {'agrees' if self.agrees else 'differs'}"


# The scorer's default tokens per sequence (rewardmodel.ml.infer.DEFAULT_MAX_LENGTH; a test keeps them equal).
SCORE_MAX_LENGTH = 1024


class PairScore(models.Model):
    """A reward model's scores for a pair (filled by a curation round's scoring step).

    ``p`` is the DESIGN's p = sigmoid(r(x, y_w) - r(x, y_l)) against the pair's verified label at
    scoring time (null when the pair was not verified); :attr:`p_a` is the model's own preference.
    """

    pair = models.ForeignKey("annotation.Pair", on_delete=models.CASCADE, related_name="rm_scores")
    model_version = models.ForeignKey("rewardmodel.ModelVersion", on_delete=models.CASCADE, related_name="+")
    r_a = models.FloatField()
    r_b = models.FloatField()
    p = models.FloatField(null=True, blank=True)
    # Tokens per (conversation, response) the scores were computed with, as requested (the scorer clamps it to
    # the model's position limit). A stage-2 run with another limit rescores and replaces the row.
    max_length = models.PositiveIntegerField(default=SCORE_MAX_LENGTH)
    scored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "model_version"], name="pairscore_one_per_model")]

    def __str__(self) -> str:
        return f"Scores of pair {self.pair_id} by model {self.model_version_id}"

    @property
    def p_a(self) -> float:
        """sigmoid(r_a - r_b): the model's probability that A is the better response."""
        margin = self.r_a - self.r_b
        if margin >= 0:
            return 1.0 / (1.0 + math.exp(-margin))
        e = math.exp(margin)
        return e / (1.0 + e)


# --- curation rounds and dataset versions ---------------------------------------------------------


class DatasetVersion(models.Model):
    """An immutable snapshot of a project's curated data, with its provenance.

    ``train_data`` / ``eval_data`` are the reward-model app's registered files (hashed copies), so a
    training job that references them trains on exactly this snapshot.
    """

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    round = models.ForeignKey(
        "curation.CurationRound", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    train_data = models.ForeignKey("rewardmodel.DatasetFile", on_delete=models.PROTECT, related_name="+")
    eval_data = models.ForeignKey(
        "rewardmodel.DatasetFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    filters = models.JSONField(default=dict, help_text="How the snapshot was selected.")
    counts = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CurationRound(JobFields):
    """One iteration of stage 1: train on D_silver, validate on D_gold, retrieve around mispredictions."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    STEPS = ("data", "train", "score", "embed", "retrieve", "queue")
    STEP_LABELS = {
        "data": "Build D_silver training and D_gold validation files",
        "train": "Train a reward model (best D_gold checkpoint)",
        "score": "Score verified pairs: p = σ(r_w − r_l)",
        "embed": "Embed the unverified pool into an ANN index",
        "retrieve": "Retrieve k(p) neighbours per verified pair",
        "queue": "Queue retrieved pairs by priority 1 − p",
    }

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    config = models.JSONField(default=dict)
    steps = models.JSONField(default=dict, help_text="{step: {status, progress, detail, started_at, finished_at}}")
    metrics = models.JSONField(default=dict)
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    training_job = models.ForeignKey(
        "rewardmodel.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_version = models.ForeignKey(
        "rewardmodel.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="curationround_number_per_project")]

    def __str__(self) -> str:
        return f"Round {self.number}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def step_rows(self) -> list[dict]:
        return [
            {"key": key, "label": self.STEP_LABELS[key], **self.steps.get(key, {"status": "pending"})}
            for key in self.STEPS
        ]


class DisputeComment(models.Model):
    """One message in a dispute's thread between the lead and the pair's annotators.

    Annotators read and write the thread only once they have submitted their own label on the pair
    (``curation.comments``), so a comment can never sway a label still to be given.
    """

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["dispute", "created_at"], name="disputecomment_thread_idx")]

    def __str__(self) -> str:
        return f"Comment {self.pk} on dispute {self.dispute_id}"


# Stage 2 (consistency filtering and label recycling) keeps its ledger in its own module.
from curation.stage2.models import Stage2Result, Stage2Run, Stage2Shard  # noqa: E402, F401
