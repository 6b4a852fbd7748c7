"""The annotator tools' rows: reference corpora, and the evidence annotators gather (fact-check
search, code runner, AI assist).

Every evidence row names its pair and the user who made it; who may read it is decided in
annotation/tools/selectors.py (an annotator sees only their own; leads see an annotator's evidence
once that annotator has submitted their label). Full-text indexes are not model fields: the
migration (annotation/migrations/0003_tools.py) adds a stored tsvector column with a GIN index on
PostgreSQL, and an FTS5 table kept in sync by triggers on SQLite.

These models were carved out of ``annotation.models``; their tables keep the names they had there
(``Meta.db_table``), so the move needed no data migration (tools/0001_initial is state only).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from annotation.models import Pair
from config.jobs import JobFields


class Corpus(JobFields):
    """A reference work loaded by an admin for the fact-check search (e.g. a Debian dictionary).

    An uploaded corpus is a background row (config/jobs.py): queued, then loading on a worker.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        LOADING = "loading", "Loading"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    licence = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the text came from (package, URL).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    error = models.TextField(blank=True)
    n_documents = models.PositiveIntegerField(default=0)
    upload_path = models.CharField(max_length=1000, blank=True, help_text="Uploaded file awaiting a worker.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "annotation_corpus"
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name


class CorpusDocument(models.Model):
    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=300, help_text="Unique within the corpus.")
    title = models.CharField(max_length=500)
    text = models.TextField()
    source_url = models.CharField(max_length=1000, blank=True)

    class Meta:
        db_table = "annotation_corpusdocument"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "external_id"], name="corpusdocument_unique_external_id"),
        ]

    def __str__(self) -> str:
        return self.title


class ToolEvidence(models.Model):
    """What every evidence row has: the pair, who gathered it, when.

    Each concrete model names its table (``db_table``, as it was under ``annotation``) and keeps
    the index name ``<model>_pair_idx`` it had there.
    """

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["pair", "annotator", "created_at"], name="%(class)s_pair_idx")]


class SearchQuery(ToolEvidence):
    class Backend(models.TextChoices):
        CORPUS = "corpus", "Reference corpus"
        WEB = "web", "Web search"

    backend = models.CharField(max_length=16, choices=Backend.choices)
    query = models.CharField(max_length=500)
    results = models.JSONField(
        default=list, blank=True, help_text="Ranked results as shown: rank, title, url, snippet_html, document_id."
    )
    relaxed = models.BooleanField(default=False, help_text="No result had every word; results match any word.")
    capped = models.BooleanField(default=False, help_text="More documents matched than were ranked.")
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta(ToolEvidence.Meta):
        db_table = "annotation_searchquery"
        verbose_name_plural = "search queries"

    def __str__(self) -> str:
        return f"Search {self.query!r}"


class SearchResultOpened(ToolEvidence):
    search = models.ForeignKey(SearchQuery, on_delete=models.CASCADE, related_name="opened")
    rank = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=500)
    url = models.CharField(max_length=1000, blank=True)
    document = models.ForeignKey(CorpusDocument, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta(ToolEvidence.Meta):
        db_table = "annotation_searchresultopened"


class EvidenceSnippet(ToolEvidence):
    """A passage the annotator attached to the pair as evidence, with where it came from."""

    search = models.ForeignKey(SearchQuery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    document = models.ForeignKey(CorpusDocument, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=500)
    url = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    note = models.TextField(blank=True)
    is_verbatim = models.BooleanField(
        null=True, help_text="The text appears word for word in the source document (None: not checkable)."
    )

    class Meta(ToolEvidence.Meta):
        db_table = "annotation_evidencesnippet"


class CodeRun(JobFields, ToolEvidence):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        REFUSED = "refused", "Refused"  # no sandbox on the worker: nothing was run
        FAILED = "failed", "Failed"  # our error, not the program's

    language = models.CharField(max_length=32)
    code = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    stdout_truncated = models.BooleanField(default=False)
    stderr_truncated = models.BooleanField(default=False)
    exit_code = models.IntegerField(null=True, blank=True)
    signal = models.CharField(max_length=16, blank=True)
    wall_ms = models.PositiveIntegerField(null=True, blank=True)
    cpu_ms = models.PositiveIntegerField(null=True, blank=True)
    limit_hit = models.CharField(max_length=16, blank=True)
    limits = models.JSONField(default=dict, blank=True)
    sandbox = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(ToolEvidence.Meta):
        db_table = "annotation_coderun"

    def __str__(self) -> str:
        return f"Code run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.REFUSED, self.Status.FAILED}


class AIQuery(JobFields, ToolEvidence):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Verdict(models.TextChoices):
        NONE = "", "No verdict"
        A = "A", "A"
        B = "B", "B"
        TIE = "tie", "Tie"
        UNSURE = "unsure", "Unsure"

    question = models.TextField()
    order_shown = models.CharField(
        max_length=2, help_text="The order the annotator saw; the model got the responses in this order."
    )
    model = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    answer = models.TextField(blank=True)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True, help_text="Canonical A/B terms.")
    raw_response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(ToolEvidence.Meta):
        db_table = "annotation_aiquery"
        verbose_name = "AI query"
        verbose_name_plural = "AI queries"

    def __str__(self) -> str:
        return f"AI query {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}
