"""Agreement figures: Krippendorff's alpha per dimension for a project, a batch or an annotator.

Labels are read from the annotation app's tables here (read-only querysets): columns are built with
one ``values_list`` query per scope (tuples only, streamed in chunks) and handed to the pure module
:mod:`curation.agreement`. The refreshes (:mod:`curation.agreement_refresh`) store what these compute
as snapshots; the ``agreement`` command prints them computed now (:mod:`curation.dashboard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import QuerySet

from annotation.models import Annotation, Project
from curation.agreement import DESIRED_ATTRIBUTES, DIMENSIONS, LabelColumns, agreement_report, annotator_agreement
from curation.batches import batch_pair_filter
from curation.retests import retest_by_annotator

LABEL_CHUNK = 20_000
DIMENSION_NAMES = tuple(d.name for d in DIMENSIONS)


def _labels(project: Project, batch_key: str | None) -> QuerySet[Annotation]:
    labels = Annotation.objects.filter(pair__project=project, is_retest=False)
    if batch_key is not None:
        labels = labels.filter(batch_pair_filter(batch_key, prefix="pair__"))
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
