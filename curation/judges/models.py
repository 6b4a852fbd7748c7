"""LLM judges: their configuration, every call they answered, failed calls, runs in shards, outcomes.

Invariants (kept by ``curation/judges/services.py``):

- a :class:`JudgeCall` is an *answer* (readable or not) and is the cache: one row per
  ``cache_key`` = hash(prompt, model, parameters, sample index); failures never become one;
- a :class:`JudgeCallFailure` is a failed attempt (HTTP error, timeout, 429, unreachable), kept
  apart and never read as an answer;
- a :class:`JudgeOutcome` is the panel's outcome for one pair in one run (A, B, tie or failed),
  at most one per (run, pair); a shard resumes by skipping pairs that have one;
- a :class:`JudgeVerdict` is the label judges gave a pair for D_silver (``via=judge``); it is
  never D_gold and never a ``VerifiedPair``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from config.jobs import JobFields

RESPONSE_FORMAT_CHOICES = [
    ("json_schema", "json_schema (OpenAI, vLLM, llama-server)"),
    ("json_object_schema", "json_object + schema (llama-cpp-python)"),
    ("json_object", "json_object (plain JSON mode)"),
    ("none", "none (prompt only; transformers serve)"),
]


class Judge(models.Model):
    """An OpenAI-compatible chat-completions endpoint used as a judge (configured by admins)."""

    class Mode(models.TextChoices):
        SINGLE = "single", "Single order (random, stored)"
        BOTH = "both", "Both orders (disagreement is a tie)"
        POINTWISE = "pointwise", "Pointwise (log-probability of 'good' per candidate; needs logprobs)"

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(max_length=300, help_text="Up to /v1, e.g. http://127.0.0.1:8011/v1.")
    model = models.CharField(max_length=300)
    # The key: stored (write-only in forms), or read from an environment variable or a file at call time.
    api_key = models.CharField(max_length=500, blank=True, help_text="Write-only; never shown again.")
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of an environment variable holding the key (wins over the rest)."
    )
    api_key_file = models.CharField(max_length=300, blank=True, help_text="Path of a file holding the key.")
    response_format = models.CharField(max_length=24, choices=RESPONSE_FORMAT_CHOICES, default="json_schema")
    temperature = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    samples = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(15)],
        help_text="Samples per pair and order (self-consistency); use an odd number and a temperature above 0.",
    )
    concurrency = models.PositiveSmallIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(64)], help_text="Requests in flight per worker."
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        default=0, help_text="Requests per minute across all workers (0: no limit)."
    )
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.SINGLE)
    max_examples = models.PositiveSmallIntegerField(
        default=8,
        validators=[MaxValueValidator(8)],
        help_text="Human-verified examples in the prompt (at most 8, fewer when the reward model is confident).",
    )
    max_tokens = models.PositiveIntegerField(default=64, validators=[MinValueValidator(8), MaxValueValidator(4096)])
    timeout_s = models.FloatField(default=60.0, validators=[MinValueValidator(1.0), MaxValueValidator(600.0)])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(samples__gte=1) & Q(samples__lte=15), name="judge_samples_range"),
            models.CheckConstraint(condition=Q(max_examples__lte=8), name="judge_max_examples_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:  # never the key
        return f"<Judge {self.pk} {self.name!r} {self.model!r}>"

    @property
    def has_key(self) -> bool:
        return bool(self.api_key or self.api_key_env or self.api_key_file)


class JudgeCall(models.Model):
    """One answer of one judge to one prompt (the cache). ``choice`` is in shown positions ("1", "2", "tie").

    Kinds: ``pair`` (which candidate is better; ``order`` AB/BA), ``pointwise`` (is candidate ``order``
    = A or B good; ``score`` = log-odds of "good" from the server's logprobs), ``attributes`` (the
    five attributes proposed for an unlabelled pair; ``raw`` holds the answer).
    """

    class Status(models.TextChoices):
        OK = "ok", "Answered"
        UNPARSED = "unparsed", "Answer not readable"

    class Kind(models.TextChoices):
        PAIR = "pair", "Pairwise choice"
        POINTWISE = "pointwise", "Pointwise score"
        ATTRIBUTES = "attributes", "Attribute proposal"

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="calls")
    pair = models.ForeignKey("annotation.Pair", null=True, on_delete=models.SET_NULL, related_name="+")
    cache_key = models.CharField(max_length=64, unique=True)
    prompt_hash = models.CharField(max_length=64)
    order = models.CharField(max_length=2)
    sample_index = models.PositiveSmallIntegerField(default=0)
    n_examples = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PAIR)
    score = models.FloatField(null=True, blank=True, help_text="Pointwise: log P(good) − log P(bad).")
    status = models.CharField(max_length=16, choices=Status.choices)
    raw = models.TextField(blank=True)
    choice = models.CharField(max_length=4, blank=True)
    side = models.CharField(max_length=4, blank=True, help_text="A, B, tie, or empty when unreadable.")
    strength = models.CharField(max_length=8, blank=True)
    parse_error = models.CharField(max_length=200, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["judge", "pair"], name="judgecall_judge_pair_idx")]

    def __str__(self) -> str:
        return f"Call {self.pk} of {self.judge_id} on pair {self.pair_id}: {self.choice or self.status}"


class JudgeCallFailure(models.Model):
    """A failed attempt (never an answer, never cached): kept for the log and retried later."""

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="failures")
    pair = models.ForeignKey("annotation.Pair", null=True, on_delete=models.SET_NULL, related_name="+")
    cache_key = models.CharField(max_length=64)
    prompt_hash = models.CharField(max_length=64)
    order = models.CharField(max_length=2)
    sample_index = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    transient = models.BooleanField(default=True)
    latency_ms = models.PositiveIntegerField(default=0)
    waited_s = models.FloatField(default=0.0, help_text="Backoff slept after this attempt.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["judge", "-created_at"], name="judgefailure_judge_idx")]

    def __str__(self) -> str:
        return f"Failure of {self.judge_id} on pair {self.pair_id}: {self.error[:60]}"


class JudgeRateState(models.Model):
    """The next free request slot of a judge's global rate limiter (shared by every worker)."""

    judge = models.OneToOneField(Judge, on_delete=models.CASCADE, related_name="rate_state")
    next_at = models.DateTimeField()


class JudgeRun(models.Model):
    """A request to judge a set of pairs, cut into shards. Its progress is the outcomes written so far."""

    class Purpose(models.TextChoices):
        ASK = "ask", "A lead asked about a pair"
        SILVER = "silver", "Label pairs for D_silver"
        EVAL = "eval", "Agreement with D_gold (held-out slice, both orders)"
        ATTRIBUTES = "attributes", "Propose the five attributes for unlabelled pairs"

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    judges = models.ManyToManyField(Judge, related_name="runs")
    n_pairs = models.PositiveIntegerField(default=0)
    write_verdicts = models.BooleanField(default=False, help_text="Decided outcomes become D_silver judge verdicts.")
    force_both_orders = models.BooleanField(default=False, help_text="Judge every pair in both orders (bias check).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Judge run {self.pk} ({self.purpose}, {self.n_pairs} pairs)"


class JudgeShard(JobFields):
    """A slice of a run's pairs, worked by one task through the shared lifecycle; resumable."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    pair_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    n_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="judgeshard_index_per_run")]

    def __str__(self) -> str:
        return f"Shard {self.index} of judge run {self.run_id} ({self.status})"


class JudgeOutcome(models.Model):
    """The panel's outcome for one pair in one run; ``per_judge``: {judge id: outcome dict}.

    ``result``: A, B, tie or failed; in an attribute-proposal run, ``proposed`` or failed.
    """

    run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="outcomes")
    pair = models.ForeignKey("annotation.Pair", on_delete=models.CASCADE, related_name="+")
    result = models.CharField(max_length=8, help_text="A, B, tie, failed, or proposed (attribute runs).")
    strength = models.CharField(max_length=8, blank=True)
    per_judge = models.JSONField(default=dict)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pair_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "pair"], name="judgeoutcome_one_per_run_pair"),
            models.CheckConstraint(
                condition=Q(result__in=["A", "B", "tie", "failed", "proposed"]), name="judgeoutcome_result"
            ),
        ]

    def __str__(self) -> str:
        return f"Pair {self.pair_id} in run {self.run_id}: {self.result}"


class JudgeVerdict(models.Model):
    """The judges' label of a pair for D_silver (``via=judge``, ``pool=silver``); the latest decided run wins."""

    pair = models.OneToOneField("annotation.Pair", on_delete=models.CASCADE, related_name="judge_verdict")
    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="+")
    side = models.CharField(max_length=1)
    strength = models.CharField(max_length=8)
    run = models.ForeignKey(JudgeRun, null=True, on_delete=models.SET_NULL, related_name="+")
    votes = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["pair_id"]
        constraints = [
            models.CheckConstraint(condition=Q(side__in=["A", "B"]), name="judgeverdict_side_valid"),
            models.CheckConstraint(condition=Q(strength__in=["clearly", "slightly"]), name="judgeverdict_strength"),
        ]
        indexes = [models.Index(fields=["project", "pair"], name="judgeverdict_project_idx")]

    def __str__(self) -> str:
        return f"Judges on pair {self.pair_id}: {self.side} {self.strength}"
