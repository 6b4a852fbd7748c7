"""The Quality page (the lead dashboard) and the ``agreement`` command's summary: reads only.

:func:`dashboard` shows the stored figures (what the workers computed: snapshots, gates) plus live
counts; :func:`agreement_summary` computes everything now from the labels, as one JSON-able object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q

from annotation.models import Pair, Project
from curation.agreement import DESIRED_ATTRIBUTES
from curation.agreement_figures import (
    DIMENSION_NAMES,
    agreement_figures,
    agreement_from_columns,
    annotator_figures,
    label_columns,
)
from curation.batches import batch_keys, batch_name
from curation.charts import Chart, line_chart, sparkline
from curation.models import AgreementSnapshot, BatchGate, CurationSettings, Dispute, VerifiedPair
from curation.project_settings import curation_settings_peek
from curation.retests import retest_by_annotator, retest_summary

# --- counts --------------------------------------------------------------------------------------


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


# --- the agreement command's JSON --------------------------------------------------------------


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
                "name": gate.import_batch.filename if gate and gate.import_batch else batch_name(key),
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


# --- the Quality page ------------------------------------------------------------------------------

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
            name=g.import_batch.filename if g.import_batch else batch_name(g.batch_key),
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
