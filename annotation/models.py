"""Projects, pairs, assignments and annotations.

Invariants (enforced by services, backed by constraints here):
- a pair is labelled by exactly ``project.annotators_per_pair`` distinct annotators;
- an annotator holds at most one live claim per project and never labels a pair twice;
- ``Pair.n_claimed`` counts live claims plus submitted labels, ``Pair.n_submitted`` the labels.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation import preference as codes
from config.jobs import JobFields


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    LEAD = "lead", "Lead"
    ADMIN = "admin", "Admin"


DEFAULT_TAXONOMY = [
    "programming",
    "math",
    "math proof",
    "reasoning",
    "factual question",
    "creative writing",
    "summarisation",
    "translation",
    "advice",
    "open conversation",
    "roleplay",
    "safety / harmful request",
    "other",
]
DEFAULT_DESIRED_ATTRIBUTES = [
    "accuracy",
    "helpfulness",
    "harmlessness",
    "honesty",
    "safety",
    "originality",
    "conciseness",
    "completeness",
    "clarity",
    "instruction following",
]


def default_taxonomy() -> list[str]:
    return list(DEFAULT_TAXONOMY)


def default_desired_attributes() -> list[str]:
    return list(DEFAULT_DESIRED_ATTRIBUTES)


def default_annotators_per_pair() -> int:
    return int(settings.ANNOTATORS_PER_PAIR)


def default_claim_timeout() -> int:
    return int(settings.CLAIM_TIMEOUT_MINUTES)


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    guidelines = models.TextField(blank=True, help_text="Markdown. Shown to annotators one click from every pair.")
    annotators_per_pair = models.PositiveSmallIntegerField(default=default_annotators_per_pair)
    claim_timeout_minutes = models.PositiveIntegerField(default=default_claim_timeout)
    taxonomy = models.JSONField(default=default_taxonomy, help_text="Task categories annotators choose from.")
    desired_attributes = models.JSONField(default=default_desired_attributes)
    # Known-answer checks (annotation/checks.py); the pairs are KnownAnswer rows a lead chooses.
    qualification_required = models.BooleanField(
        default=False, help_text="New annotators label only the qualification pairs until they pass."
    )
    qualification_threshold = models.FloatField(
        default=0.8, help_text="Share of qualification pairs to answer right to pass (0 to 1)."
    )
    attention_check_rate = models.FloatField(
        default=0.0, help_text="Share of pairs served that are hidden attention checks (0 to 0.5)."
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotators_per_pair__gte=1) & Q(annotators_per_pair__lte=15),
                name="project_annotators_per_pair_range",
            ),
            models.CheckConstraint(condition=Q(claim_timeout_minutes__gte=1), name="project_claim_timeout_positive"),
            models.CheckConstraint(
                condition=Q(qualification_threshold__gt=0) & Q(qualification_threshold__lte=1),
                name="project_qualification_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(attention_check_rate__gte=0) & Q(attention_check_rate__lte=0.5),
                name="project_attention_check_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ImportBatch(JobFields):
    """One imported file: the unit of "batch" for agreement and provenance.

    A background row: its lifecycle (dispatch, claim, heartbeat, reaper) is config/jobs.py's.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="batches")
    filename = models.CharField(max_length=500)
    path = models.CharField(max_length=1000, blank=True, help_text="Uploaded file awaiting a worker.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    n_lines = models.PositiveIntegerField(default=0)
    n_imported = models.PositiveIntegerField(default=0)
    n_duplicates = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}


class Pair(models.Model):
    """A preference pair: a conversation and two candidate responses.

    ``response_a`` / ``response_b`` are the canonical order. When the source file said which was
    preferred (``chosen``/``rejected``) it is stored as ``source_label``: chosen is always A.
    Annotators see A and B in their own random order (``Assignment.order_shown``).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"  # takes more claims
        FULL = "full", "Full"  # every slot claimed, some labels outstanding
        COMPLETE = "complete", "Complete"  # all labels in

    class SourceLabel(models.TextChoices):
        NONE = "", "None"
        A = "A", "A"
        B = "B", "B"

    # No index of its own: the unique (project, content hash) and the queue index both lead with it,
    # and a third copy cost every bulk import an index insert per pair (docs/benchmarks.md).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs", db_index=False)
    batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="pairs")
    external_id = models.CharField(max_length=200, blank=True)
    conversation = models.JSONField(help_text="List of {role, content} messages; the last is the user's turn.")
    response_a = models.TextField()
    response_b = models.TextField()
    source_label = models.CharField(max_length=1, choices=SourceLabel.choices, blank=True, default="")
    source = models.CharField(max_length=200, blank=True)
    subset = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    priority = models.FloatField(default=0.0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    n_claimed = models.PositiveSmallIntegerField(default=0)
    n_submitted = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    # Attributes an LLM proposed for this unlabelled pair (annotation/proposals.py): the five
    # attributes plus "source" and "proposed_at"; pre-filled, marked as a proposal, on the labelling page.
    attribute_proposal = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="pair_unique_content_per_project"),
            models.CheckConstraint(
                condition=Q(n_submitted__lte=models.F("n_claimed")), name="pair_submitted_le_claimed"
            ),
        ]
        indexes = [
            # The queue: open pairs of a project, highest priority first.
            models.Index(fields=["project", "status", "-priority", "id"], name="pair_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"Pair {self.pk}"


class Assignment(models.Model):
    """An annotator's claim on a pair, and the order in which A and B were shown to them."""

    class Status(models.TextChoices):
        OFFERED = "offered", "Offered"  # queued for this annotator only (retests); not yet claimed
        CLAIMED = "claimed", "Claimed"
        SUBMITTED = "submitted", "Submitted"
        EXPIRED = "expired", "Expired"

    class Kind(models.TextChoices):
        REGULAR = "regular", "Regular"  # one of the pair's N labels
        RETEST = "retest", "Retest"  # a double-blind re-label of a verified pair; not one of the N
        # Known-answer checks (annotation/checks.py): not one of the N either. The annotator is never
        # told which kind a pair is (a qualification pair says only that qualification is under way).
        QUALIFICATION = "qualification", "Qualification"
        ATTENTION = "attention", "Attention check"

    class Order(models.TextChoices):
        AB = "AB", "A left, B right"
        BA = "BA", "B left, A right"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CLAIMED)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REGULAR)
    order_shown = models.CharField(max_length=2, choices=Order.choices)
    claimed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "annotator"],
                condition=~Q(status="expired"),
                name="assignment_one_live_per_pair_annotator",
            ),
            models.UniqueConstraint(
                fields=["project", "annotator"],
                condition=Q(status="claimed"),
                name="assignment_one_open_claim_per_project",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="assignment_expiry_idx")]

    def __str__(self) -> str:
        return f"Assignment {self.pk} ({self.status})"


class Preference(models.TextChoices):
    """The label, always in canonical A/B terms (not the order shown)."""

    # The codes are annotation.preference's (the one module that parses and builds them).
    A_CLEARLY = codes.A_CLEARLY, "A is clearly better"
    A_SLIGHTLY = codes.A_SLIGHTLY, "A is slightly better"
    B_SLIGHTLY = codes.B_SLIGHTLY, "B is slightly better"
    B_CLEARLY = codes.B_CLEARLY, "B is clearly better"
    UNDECIDABLE = codes.UNDECIDABLE, "Can't decide"


class Objectivity(models.TextChoices):
    FACTUAL = "factual", "Factual"
    OPINION = "opinion", "Opinion"
    OPEN_ENDED = "open_ended", "Open-ended"


class Controversiality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class Annotation(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="annotation")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    preference = models.CharField(max_length=16, choices=Preference.choices)
    is_retest = models.BooleanField(default=False, help_text="A double-blind retest label, not one of the pair's N.")
    order_shown = models.CharField(max_length=2, choices=Assignment.Order.choices)
    task_category = models.CharField(max_length=200)
    objectivity = models.CharField(max_length=16, choices=Objectivity.choices)
    controversiality = models.CharField(max_length=16, choices=Controversiality.choices)
    desired_attributes = models.JSONField(default=list, blank=True)
    guideline = models.TextField(blank=True)
    rationale = models.TextField()
    # When the pair carried an LLM proposal: per attribute, what was proposed, what was submitted, accepted.
    proposal_review = models.JSONField(null=True, blank=True)
    time_spent_ms = models.PositiveIntegerField(help_text="Active time on the page, as measured in the browser.")
    wall_time_ms = models.PositiveIntegerField(help_text="Claim to submit, as measured on the server.")
    submitted_at = models.DateTimeField()

    class Meta:
        ordering = ["submitted_at"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "annotator"], name="annotation_one_per_pair_annotator"),
        ]

    def __str__(self) -> str:
        return f"Annotation {self.pk} on pair {self.pair_id}"

    @property
    def side(self) -> str | None:
        """'A', 'B', or None for can't decide."""
        return codes.side_of(self.preference)


class AnnotationRevision(models.Model):
    """One edit of a submitted label (the audit): the label's fields before and after, who, when.

    An annotator may change their own label until its pair is verified (``annotation_edit``).
    ``before``/``after`` hold the label fields (preference in canonical A/B terms).
    """

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    editor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    before = models.JSONField()
    after = models.JSONField()
    time_spent_ms = models.PositiveIntegerField(default=0, help_text="Active time on the edit page.")
    edited_at = models.DateTimeField()

    class Meta:
        ordering = ["edited_at", "id"]
        indexes = [models.Index(fields=["annotation", "edited_at"], name="annotationrevision_idx")]

    def __str__(self) -> str:
        return f"Edit of annotation {self.annotation_id} at {self.edited_at:%Y-%m-%d %H:%M}"


# ==================================================================================================
# Known-answer checks and first visits (services and selectors in annotation/checks.py). A lead
# chooses pairs with a known answer: qualification pairs gate new annotators, attention-check pairs
# are mixed, hidden, into everyone's queue. Labels on them are extra labels (``is_retest``: not one
# of the pair's N) whose assignment kind says which check they answer. The known answer never
# leaves the server for an annotator.
# ==================================================================================================


class KnownAnswer(models.Model):
    class Purpose(models.TextChoices):
        QUALIFICATION = "qualification", "Qualification"
        ATTENTION = "attention", "Attention check"

    class Side(models.TextChoices):
        A = "A", "A is better"
        B = "B", "B is better"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="known_answers")
    pair = models.OneToOneField(Pair, on_delete=models.CASCADE, related_name="known_answer")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    side = models.CharField(max_length=1, choices=Side.choices, help_text="The right answer, canonical A/B.")
    note = models.TextField(blank=True, help_text="Why this is the answer (leads only).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "purpose", "id"], name="knownanswer_purpose_idx")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} pair {self.pair_id}: {self.side}"


class AnnotatorOnboarding(models.Model):
    """Where one annotator stands in one project: guidelines seen, qualification decided."""

    class Qualification(models.TextChoices):
        PENDING = "pending", "In progress"
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"
        EXEMPT = "exempt", "Exempt (labelled before qualification was required)"
        GRANTED = "granted", "Qualified by a lead"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    guidelines_seen_at = models.DateTimeField(null=True, blank=True)
    guidelines_hash = models.CharField(max_length=64, blank=True, help_text="The guidelines' text as last shown.")
    qualification = models.CharField(max_length=16, choices=Qualification.choices, default=Qualification.PENDING)
    qualification_correct = models.PositiveIntegerField(default=0)
    qualification_answered = models.PositiveIntegerField(default=0)
    qualification_decided_at = models.DateTimeField(null=True, blank=True)
    qualification_attempt = models.PositiveSmallIntegerField(
        default=1, help_text="Attempts so far; a lead's reset clears the answers and starts another."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "annotator"], name="annotatoronboarding_one_per_annotator"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in project {self.project_id}: {self.qualification}"
