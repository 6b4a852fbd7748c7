"""Reads of the curation app: label columns for agreement, dashboard figures, the dispute queue.

Labels are read from the annotation app's tables here (read-only querysets); every write to
annotation data goes through ``annotation.services``. Agreement is computed from columns built
with one ``values_list`` query per scope (tuples only, streamed in chunks) and handed to the pure
module :mod:`curation.agreement`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from annotation.models import Annotation, Pair, Project
from annotation.selectors import annotation_list_for_pair
from curation.agreement import DESIRED_ATTRIBUTES, DIMENSIONS, LabelColumns, agreement_report, annotator_agreement
from curation.charts import Chart, line_chart, sparkline
from curation.models import (
    AgreementSnapshot,
    BatchGate,
    CurationSettings,
    Dispute,
    DisputeResolution,
    PairScore,
    RetestResult,
    VerifiedPair,
)

logger = logging.getLogger(__name__)

UNBATCHED = "import:none"
LABEL_CHUNK = 20_000
DIMENSION_NAMES = tuple(d.name for d in DIMENSIONS)


# --- batches -------------------------------------------------------------------------------------


def batch_key_for(import_batch_id: int | None) -> str:
    """The batch key of pairs from an import (``"import:<id>"``; ``"import:none"`` without one)."""
    return f"import:{import_batch_id}" if import_batch_id is not None else UNBATCHED


def batch_key_for_pair(pair: Pair) -> str:
    return batch_key_for(pair.batch_id)


def parse_batch_key(batch_key: str) -> tuple[str, int | None]:
    """``"import:12"`` -> ``("import", 12)``; ``"import:none"`` -> ``("import", None)``.

    Raises ValueError for anything else (round keys arrive with curation rounds).
    """
    kind, _, ident = batch_key.partition(":")
    if kind != "import" or not ident:
        raise ValueError(f"unknown batch key {batch_key!r}; expected import:<id> or {UNBATCHED}")
    if ident == "none":
        return kind, None
    try:
        return kind, int(ident)
    except ValueError:
        raise ValueError(f"unknown batch key {batch_key!r}; expected import:<id> or {UNBATCHED}") from None


def _pair_filter(batch_key: str, prefix: str = "") -> Q:
    _kind, import_id = parse_batch_key(batch_key)
    if import_id is None:
        return Q(**{f"{prefix}batch__isnull": True})
    return Q(**{f"{prefix}batch_id": import_id})


def batch_pairs(project: Project, batch_key: str) -> QuerySet[Pair]:
    """The pairs of one batch."""
    return Pair.objects.filter(Q(project=project) & _pair_filter(batch_key))


def batch_keys(project: Project) -> list[str]:
    """Every batch key that has pairs in ``project`` (import order)."""
    ids = Pair.objects.filter(project=project).values_list("batch_id", flat=True).distinct().order_by("batch_id")
    return [batch_key_for(i) for i in ids]


def pairs_pending_gate(project: Project, batch_key: str) -> QuerySet[Pair]:
    """Complete pairs of a batch with neither a dispute nor a verification: waiting for the gate."""
    return (
        batch_pairs(project, batch_key)
        .filter(status=Pair.Status.COMPLETE)
        .filter(~Exists(Dispute.objects.filter(pair=OuterRef("pk"))))
        .filter(~Exists(VerifiedPair.objects.filter(pair=OuterRef("pk"))))
        .order_by("id")
    )


def curation_settings_peek(project: Project) -> CurationSettings:
    """The project's settings, or unsaved defaults when none were stored yet (no write)."""
    found = CurationSettings.objects.filter(project=project).first()
    return found if found is not None else CurationSettings(project=project)


# --- label columns and agreement -----------------------------------------------------------------


def _labels(project: Project, batch_key: str | None) -> QuerySet[Annotation]:
    labels = Annotation.objects.filter(pair__project=project, is_retest=False)
    if batch_key is not None:
        labels = labels.filter(_pair_filter(batch_key, prefix="pair__"))
    return labels


def label_columns(project: Project, batch_key: str | None = None) -> LabelColumns:
    """Every regular (non-retest) label of the project or one batch, as parallel columns.

    One ``values_list`` query, streamed in chunks and ordered by pair id (so the agreement module
    indexes units without sorting). Nothing but tuples is built per label.
    """
    fields = ("pair_id", "annotator_id", *DIMENSION_NAMES, DESIRED_ATTRIBUTES)
    columns: list[list[Any]] = [[] for _ in fields]
    rows = _labels(project, batch_key).order_by("pair_id", "annotator_id").values_list(*fields)
    chunk: list[tuple[Any, ...]] = []
    for row in rows.iterator(chunk_size=LABEL_CHUNK):
        chunk.append(row)
        if len(chunk) >= LABEL_CHUNK:
            for column, values in zip(columns, zip(*chunk, strict=True), strict=True):
                column.extend(values)
            chunk = []
    if chunk:
        for column, values in zip(columns, zip(*chunk, strict=True), strict=True):
            column.extend(values)
    units, annotators, *dimension_columns, desired = columns
    return LabelColumns(
        unit_ids=np.asarray(units, dtype=np.int64),
        annotator_ids=np.asarray(annotators, dtype=np.int64),
        **{name: np.asarray(col, dtype=object) for name, col in zip(DIMENSION_NAMES, dimension_columns, strict=True)},
        desired_attributes=desired,
    )


@dataclass
class AgreementFigures:
    """Alpha per dimension for one scope (``figures`` is what AgreementSnapshot stores)."""

    figures: dict[str, Any]
    n_units: int
    n_labels: int

    @property
    def preference(self) -> float | None:
        return self.figures.get("preference")


def agreement_from_columns(columns: LabelColumns, desired_attributes: list[str] | None = None) -> AgreementFigures:
    """Krippendorff's alpha of every dimension (see :func:`curation.agreement.agreement_report`).

    ``desired_attributes``: the project's attribute list, reported even when nobody chose one
    (alpha null). An empty column set gives all-null figures.
    """
    if len(columns) == 0:
        figures: dict[str, Any] = dict.fromkeys(DIMENSION_NAMES)
        figures[DESIRED_ATTRIBUTES] = dict.fromkeys(sorted(desired_attributes or []))
        return AgreementFigures(figures, 0, 0)
    report = agreement_report(columns)
    n_units, n_labels = int(report.pop("n_units")), int(report.pop("n_labels"))
    attributes = dict(report.get(DESIRED_ATTRIBUTES) or {})
    for name in desired_attributes or []:
        attributes.setdefault(name, None)
    report[DESIRED_ATTRIBUTES] = dict(sorted(attributes.items()))
    return AgreementFigures(report, n_units, n_labels)


def agreement_figures(project: Project, batch_key: str | None = None) -> AgreementFigures:
    """Alpha per dimension over the project's (or one batch's) regular labels, computed now."""
    return agreement_from_columns(label_columns(project, batch_key), list(project.desired_attributes))


def annotator_figures(project: Project, columns: LabelColumns | None = None) -> dict[int, dict[str, Any]]:
    """Per annotator: preference agreement with the others (rate and alpha without them) and retests.

    Keyed by user id; every annotator with a regular label or a retest appears.
    """
    columns = columns if columns is not None else label_columns(project)
    result: dict[int, dict[str, Any]] = {}
    if len(columns):
        for annotator_id, stats in annotator_agreement(
            columns.unit_ids, columns.annotator_ids, columns.preference
        ).items():
            result[int(annotator_id)] = {  # type: ignore[call-overload]  # ids are ints here
                "n_labels": stats.n_labels,
                "n_decided": stats.n_decided,
                "n_compared": stats.n_compared,
                "agreement_rate": stats.agreement_rate,
                "alpha_all": stats.alpha_all,
                "alpha_without": stats.alpha_without,
                "alpha_delta": stats.alpha_delta,
            }
    retests = retest_by_annotator(project)
    empty = {"n": 0, "agree": 0, "agree_strength": 0, "rate": None}
    for annotator_id in set(result) | set(retests):
        row = result.setdefault(
            annotator_id,
            {
                "n_labels": 0,
                "n_decided": 0,
                "n_compared": 0,
                "agreement_rate": None,
                "alpha_all": None,
                "alpha_without": None,
                "alpha_delta": None,
            },
        )
        row["retest"] = retests.get(annotator_id, dict(empty))
    return result


def _retest_figures(n: int, agree: int, agree_strength: int) -> dict[str, Any]:
    return {"n": n, "agree": agree, "agree_strength": agree_strength, "rate": (agree / n) if n else None}


def retest_by_annotator(project: Project) -> dict[int, dict[str, Any]]:
    """Retest agreement with the verified label, per retest annotator (one aggregate query)."""
    rows = (
        RetestResult.objects.filter(project=project)
        .values("annotator_id")
        .annotate(
            n=Count("id"), agree=Count("id", filter=Q(agrees=True)), strict=Count("id", filter=Q(agrees_strength=True))
        )
        .order_by()
    )
    return {r["annotator_id"]: _retest_figures(r["n"], r["agree"], r["strict"]) for r in rows}


def retest_summary(project: Project) -> dict[str, Any]:
    """Project-wide retest figures: results, agreement, and offers still outstanding."""
    counts = RetestResult.objects.filter(project=project).aggregate(
        n=Count("id"), agree=Count("id", filter=Q(agrees=True)), strict=Count("id", filter=Q(agrees_strength=True))
    )
    offers = VerifiedPair.objects.filter(project=project).aggregate(
        offered=Count("id", filter=Q(retest_status=VerifiedPair.RetestStatus.OFFERED)),
        no_annotator=Count("id", filter=Q(retest_status=VerifiedPair.RetestStatus.NO_ANNOTATOR)),
    )
    figures = _retest_figures(counts["n"], counts["agree"], counts["strict"])
    figures.update(
        offered=offers["offered"], pending=max(0, offers["offered"] - counts["n"]), no_annotator=offers["no_annotator"]
    )
    return figures


def pair_counts(project: Project) -> dict[str, int]:
    """Verified (by route), disputes by status, and pairs waiting for their batch's gate."""
    verified = VerifiedPair.objects.filter(project=project).aggregate(
        total=Count("id"),
        majority=Count("id", filter=Q(via=VerifiedPair.Via.MAJORITY)),
        lead=Count("id", filter=Q(via=VerifiedPair.Via.LEAD)),
    )
    disputes = Dispute.objects.filter(project=project).aggregate(
        open=Count("id", filter=Q(status=Dispute.Status.OPEN)),
        resolved=Count("id", filter=Q(status=Dispute.Status.RESOLVED)),
        discarded=Count("id", filter=Q(status=Dispute.Status.DISCARDED)),
    )
    no_verdict = (
        Pair.objects.filter(project=project, status=Pair.Status.COMPLETE)
        .filter(~Exists(Dispute.objects.filter(pair=OuterRef("pk"))))
        .filter(~Exists(VerifiedPair.objects.filter(pair=OuterRef("pk"))))
        .count()
    )
    resolved_unverified = Dispute.objects.filter(
        project=project, status=Dispute.Status.RESOLVED, pair__verification__isnull=True
    ).count()
    return {
        "verified": verified["total"],
        "verified_majority": verified["majority"],
        "verified_lead": verified["lead"],
        "disputes_open": disputes["open"],
        "disputes_resolved": disputes["resolved"],
        "disputes_discarded": disputes["discarded"],
        # complete pairs with a clean majority, plus lead-resolved ones, whose batch gate is not open
        "waiting_for_gate": no_verdict + resolved_unverified,
    }


# --- the command's JSON ----------------------------------------------------------------------------


def agreement_summary(project: Project) -> dict[str, Any]:
    """Everything the dashboard shows, computed now from the labels, as one JSON-able object.

    ``batches[*].gate`` is the stored gate decision (status, threshold) next to the alpha
    computed now; ``annotators`` are keyed by username.
    """
    from django.contrib.auth import get_user_model

    settings_row = curation_settings_peek(project)
    columns = label_columns(project)
    project_figures = agreement_from_columns(columns, list(project.desired_attributes))
    gates = {g.batch_key: g for g in BatchGate.objects.filter(project=project).select_related("import_batch")}
    batches = []
    for key in batch_keys(project):
        figures = agreement_figures(project, key)
        gate = gates.get(key)
        batches.append(
            {
                "batch": key,
                "name": gate.import_batch.filename if gate and gate.import_batch else _batch_name(key),
                **figures.figures,
                "n_units": figures.n_units,
                "n_labels": figures.n_labels,
                "gate": {
                    "status": gate.status if gate else BatchGate.Status.PENDING.value,
                    "threshold": settings_row.alpha_threshold,
                    "below_threshold": figures.preference is not None
                    and figures.preference < settings_row.alpha_threshold,
                    "accepted_by": gate.accepted_by.get_username() if gate and gate.accepted_by else None,
                },
            }
        )
    by_id = annotator_figures(project, columns)
    names = dict(get_user_model().objects.filter(pk__in=by_id).values_list("pk", "username"))
    annotators = {names.get(uid, str(uid)): {"id": uid, **stats} for uid, stats in sorted(by_id.items())}
    return {
        "project": {
            "id": project.pk,
            "name": project.name,
            "alpha_threshold": settings_row.alpha_threshold,
            **project_figures.figures,
            "n_units": project_figures.n_units,
            "n_labels": project_figures.n_labels,
            **pair_counts(project),
        },
        "batches": batches,
        "annotators": dict(sorted(annotators.items())),
        "retest": retest_summary(project),
    }


def _batch_name(batch_key: str) -> str:
    return "Pairs without an import" if batch_key == UNBATCHED else batch_key


# --- dashboard -----------------------------------------------------------------------------------

HISTORY_LIMIT = 200
SPARK_LIMIT = 3000


@dataclass
class DimensionRow:
    name: str
    label: str
    level: str
    alpha: float | None


@dataclass
class BatchRow:
    gate: BatchGate
    name: str
    spark: Chart | None
    dimensions: list[DimensionRow]


@dataclass
class AnnotatorRow:
    user_id: int
    username: str
    figures: dict[str, Any]
    computed_at: datetime | None
    spark: Chart | None


@dataclass
class Dashboard:
    project: Project
    settings: CurationSettings
    latest: AgreementSnapshot | None
    dimensions: list[DimensionRow]
    attributes: list[DimensionRow]
    chart: Chart
    batches: list[BatchRow]
    flagged: list[BatchRow]
    annotators: list[AnnotatorRow]
    retest: dict[str, Any]
    counts: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


DIMENSION_LABELS = {
    "preference": ("Preference", "ordinal"),
    "objectivity": ("Objectivity", "nominal"),
    "task_category": ("Task category", "nominal"),
    "controversiality": ("Controversiality", "ordinal"),
}


def _dimension_rows(figures: dict[str, Any]) -> list[DimensionRow]:
    return [DimensionRow(n, *DIMENSION_LABELS[n], figures.get(n)) for n in DIMENSION_NAMES]


def _attribute_rows(figures: dict[str, Any]) -> list[DimensionRow]:
    attributes = figures.get(DESIRED_ATTRIBUTES) or {}
    return [DimensionRow(name, name, "nominal", value) for name, value in sorted(attributes.items())]


def snapshot_history(
    project: Project, scope: str, scope_key: str = "", limit: int = HISTORY_LIMIT
) -> list[AgreementSnapshot]:
    """The last ``limit`` snapshots of one scope, oldest first."""
    rows = list(
        AgreementSnapshot.objects.filter(project=project, scope=scope, scope_key=scope_key).order_by(
            "-computed_at", "-id"
        )[:limit]
    )
    rows.reverse()
    return rows


def _histories(
    project: Project, scope: str, keys: list[str], value: Callable[[dict[str, Any]], Any]
) -> dict[str, list[tuple[datetime, float | None]]]:
    """Recent (time, value) points per scope key, from one query over the newest snapshots."""
    points: dict[str, list[tuple[datetime, float | None]]] = defaultdict(list)
    if not keys:
        return points
    rows = (
        AgreementSnapshot.objects.filter(project=project, scope=scope, scope_key__in=keys)
        .order_by("-computed_at", "-id")
        .values_list("scope_key", "computed_at", "figures")[:SPARK_LIMIT]
    )
    for key, moment, figures in rows:
        points[key].append((moment, value(figures or {})))
    for series in points.values():
        series.reverse()
    return points


def dashboard(project: Project) -> Dashboard:
    """The lead dashboard: stored figures only (what the workers computed), plus live counts."""
    from django.contrib.auth import get_user_model

    settings_row = curation_settings_peek(project)
    threshold = settings_row.alpha_threshold
    history = snapshot_history(project, AgreementSnapshot.Scope.PROJECT)
    latest = history[-1] if history else None
    figures = latest.figures if latest else {}
    chart = line_chart(
        {
            DIMENSION_LABELS[name][0]: [(s.computed_at, (s.figures or {}).get(name)) for s in history]
            for name in DIMENSION_NAMES
        },
        threshold=threshold,
    )

    gates = list(
        BatchGate.objects.filter(project=project).select_related("import_batch", "accepted_by").order_by("-id")
    )
    batch_points = _histories(
        project, AgreementSnapshot.Scope.BATCH, [g.batch_key for g in gates], lambda f: f.get("preference")
    )
    batches = [
        BatchRow(
            gate=g,
            name=g.import_batch.filename if g.import_batch else _batch_name(g.batch_key),
            spark=sparkline(batch_points[g.batch_key], threshold=threshold) if batch_points.get(g.batch_key) else None,
            dimensions=_dimension_rows(g.figures or {}),
        )
        for g in gates
    ]

    annotator_rows: list[AnnotatorRow] = []
    last_annotator = (
        AgreementSnapshot.objects.filter(project=project, scope=AgreementSnapshot.Scope.ANNOTATOR)
        .order_by("-computed_at", "-id")
        .values_list("computed_at", flat=True)
        .first()
    )
    if last_annotator is not None:
        current = list(
            AgreementSnapshot.objects.filter(
                project=project, scope=AgreementSnapshot.Scope.ANNOTATOR, computed_at=last_annotator
            )
        )
        ids = [int(s.scope_key) for s in current]
        names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
        live_retests = retest_by_annotator(project)
        spark_points = _histories(
            project,
            AgreementSnapshot.Scope.ANNOTATOR,
            [s.scope_key for s in current],
            lambda f: f.get("agreement_rate"),
        )
        for snap in current:
            uid = int(snap.scope_key)
            row_figures = dict(snap.figures or {})
            row_figures["retest"] = live_retests.get(uid, row_figures.get("retest") or {"n": 0, "rate": None})
            points = spark_points.get(snap.scope_key) or []
            annotator_rows.append(
                AnnotatorRow(
                    uid,
                    names.get(uid, f"user {uid}"),
                    row_figures,
                    snap.computed_at,
                    sparkline(points) if len(points) > 1 else None,
                )
            )
        annotator_rows.sort(key=lambda r: r.username)

    return Dashboard(
        project=project,
        settings=settings_row,
        latest=latest,
        dimensions=_dimension_rows(figures),
        attributes=_attribute_rows(figures),
        chart=chart,
        batches=batches,
        flagged=[b for b in batches if b.gate.status == BatchGate.Status.FLAGGED],
        annotators=annotator_rows,
        retest=retest_summary(project),
        counts=pair_counts(project),
    )


# --- disputes ------------------------------------------------------------------------------------

DISPUTE_PAGE = 50


def dispute_list(
    project: Project, *, status: str = "", before: int | None = None, limit: int = DISPUTE_PAGE
) -> list[Dispute]:
    """Disputes of a project, newest first, keyset-paged by id (``before``: the last id seen)."""
    disputes = Dispute.objects.filter(project=project).select_related("pair")
    if status:
        disputes = disputes.filter(status=status)
    if before is not None:
        disputes = disputes.filter(pk__lt=before)
    return list(disputes.order_by("-id")[:limit])


def dispute_get(project: Project, dispute_id: int) -> Dispute | None:
    return Dispute.objects.filter(project=project, pk=dispute_id).select_related("pair", "pair__batch").first()


def dispute_resolutions(dispute: Dispute) -> QuerySet[DisputeResolution]:
    return DisputeResolution.objects.filter(dispute=dispute).select_related("lead").order_by("created_at", "id")


@dataclass
class Prediction:
    """The current-best reward model's view of a pair."""

    model_name: str
    model_version_id: int
    r_a: float
    r_b: float
    p_a: float
    p: float | None
    scored_at: datetime


def model_version_current_best(project: Project) -> Any:
    """The project's current-best reward model (scope ``project:<id>``), or None."""
    from rewardmodel.selectors import model_version_get_current_best

    return model_version_get_current_best(f"project:{project.pk}")


def pair_prediction(project: Project, pair: Pair) -> Prediction | None:
    """The stored score of ``pair`` by the current-best model, if a round has scored it."""
    version = model_version_current_best(project)
    if version is None:
        return None
    score = PairScore.objects.filter(pair=pair, model_version_id=version.pk).first()
    if score is None:
        return None
    return Prediction(version.name, version.pk, score.r_a, score.r_b, score.p_a, score.p, score.scored_at)


def tool_evidence(pair: Pair) -> list[dict[str, Any]]:
    """The tool evidence leads may see on ``pair`` (``annotation.tools.selectors.evidence_for_pair``),
    as template-ready dicts: ``kind``, ``annotator``, ``created_at`` and the item's exported fields."""
    from annotation.tools.selectors import evidence_for_pair

    return [
        {
            "kind": item.kind,
            "annotator": item.annotator_name,
            "created_at": item.created_at,
            "fields": item.as_export_dict(),
        }
        for item in evidence_for_pair(pair)
    ]


@dataclass
class Review:
    dispute: Dispute
    pair: Pair
    labels: list[Annotation]
    retest_labels: list[Annotation]
    resolutions: list[DisputeResolution]
    gate: BatchGate | None
    verification: VerifiedPair | None
    prediction: Prediction | None
    evidence: list[dict[str, Any]]


def dispute_review(project: Project, dispute: Dispute) -> Review:
    """Everything a lead needs to decide a dispute."""
    pair = dispute.pair
    annotations = list(annotation_list_for_pair(pair))
    return Review(
        dispute=dispute,
        pair=pair,
        labels=[a for a in annotations if not a.is_retest],
        retest_labels=[a for a in annotations if a.is_retest],
        resolutions=list(dispute_resolutions(dispute)),
        gate=BatchGate.objects.filter(project=project, batch_key=dispute.batch_key).first(),
        verification=VerifiedPair.objects.filter(pair=pair).select_related("verified_by").first(),
        prediction=pair_prediction(project, pair),
        evidence=tool_evidence(pair),
    )
