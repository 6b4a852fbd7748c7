"""Helpers for curation tests: batches of pairs, labelling them through the annotation services, the
hand-computed label matrices of the gate tests, and settling a batch as the workers do.

The alpha values are computed by hand in the comments (Krippendorff 2011's coincidence matrix
o_ck = sum_u pairs(c, k in u) / (m_u - 1), ordinal metric d(c,k) = (sum_{g=c..k} n_g - (n_c+n_k)/2)^2)
and cross-checked with ``krippendorff.alpha`` on the reliability matrix (:func:`package_alpha`).
"""

from __future__ import annotations

from typing import Any

import krippendorff
import numpy as np
from django.test import Client

from annotation.models import Annotation, ImportBatch, Pair, Project
from annotation.services import AnnotationInput, annotation_submit, assignment_claim_next
from curation.agreement_refresh import batch_refresh, pair_completed_handle
from curation.models import BatchGate
from tests.factories import PairFactory

A_CLEARLY, A_SLIGHTLY, B_SLIGHTLY, B_CLEARLY, UNDECIDABLE = (
    "A_CLEARLY",
    "A_SLIGHTLY",
    "B_SLIGHTLY",
    "B_CLEARLY",
    "UNDECIDABLE",
)
LEVELS = [A_CLEARLY, A_SLIGHTLY, B_SLIGHTLY, B_CLEARLY]


def make_batch(project: Project, n: int, filename: str = "batch.jsonl") -> tuple[ImportBatch, list[Pair]]:
    batch = ImportBatch.objects.create(project=project, filename=filename, status=ImportBatch.Status.DONE)
    pairs = [PairFactory(project=project, batch=batch) for _ in range(n)]
    return batch, pairs


def label_input(preference: str, **changes: Any) -> AnnotationInput:
    data: dict[str, Any] = {
        "preference": preference,
        "task_category": "advice",
        "objectivity": "opinion",
        "controversiality": "low",
        "desired_attributes": ["helpfulness"],
        "guideline": "",
        "rationale": f"Chose {preference}.",
        "time_spent_ms": 1500,
    }
    data.update(changes)
    return AnnotationInput(**data)


def label_pairs(project: Project, annotator: Any, labels: dict[int, str | dict[str, Any]]) -> list[Annotation]:
    """``annotator`` claims pairs from their queue and labels each pair listed in ``labels``
    (pair id -> preference, or a dict of AnnotationInput fields). Stops when all are labelled.

    Pairs are claimed in queue order; a pair not in ``labels`` is released again (skipped).
    """
    from annotation.services import assignment_release

    done: list[Annotation] = []
    wanted = dict(labels)
    skipped = 0
    while wanted:
        assignment = assignment_claim_next(project=project, annotator=annotator)
        assert assignment is not None, f"{annotator} ran out of pairs; still wanted {sorted(wanted)}"
        spec = wanted.pop(assignment.pair_id, None)
        if spec is None:
            assignment_release(assignment_id=assignment.pk, annotator=annotator)
            skipped += 1
            assert skipped < 1000
            continue
        data = label_input(spec) if isinstance(spec, str) else label_input(**spec)
        done.append(annotation_submit(assignment_id=assignment.pk, annotator=annotator, data=data))
    return done


def label_matrix(project: Project, annotators: list[Any], rows: list[tuple[Pair, list[str | dict[str, Any]]]]) -> None:
    """Label every pair of ``rows`` with one value per annotator (column j -> annotators[j])."""
    for j, annotator in enumerate(annotators):
        label_pairs(project, annotator, {pair.pk: values[j] for pair, values in rows})


# Preference codes 0..3 = A clearly, A slightly, B slightly, B clearly.
PASSING = [  # alpha = 889/1017 = 0.874 (>= 0.85)
    [A_CLEARLY, A_CLEARLY, A_SLIGHTLY],
    [B_CLEARLY, B_CLEARLY, B_CLEARLY],
    [A_SLIGHTLY, B_SLIGHTLY, B_SLIGHTLY],
]
FAILING = [  # alpha = 739/999 = 0.740 (< 0.85); pair 3 is a "clearly vs slightly" split
    [A_CLEARLY, A_CLEARLY, A_SLIGHTLY],
    [B_CLEARLY, B_CLEARLY, B_CLEARLY],
    [A_CLEARLY, B_SLIGHTLY, B_SLIGHTLY],
]
WITH_MISSING = [  # alpha = 592.5/624 = 0.9495; "can't decide" is a missing value
    [A_CLEARLY, A_CLEARLY, A_SLIGHTLY],
    [B_CLEARLY, B_CLEARLY, B_CLEARLY],
    [B_SLIGHTLY, B_SLIGHTLY, UNDECIDABLE],
]


def package_alpha(rows: list[list[str]], level: str = "ordinal", domain: list[str] = LEVELS) -> float:
    """krippendorff.alpha on the coders x units reliability matrix (NaN = missing)."""
    matrix = np.array(
        [[domain.index(row[j]) if row[j] in domain else np.nan for row in rows] for j in range(len(rows[0]))],
        dtype=float,
    )
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))


def settle(project: Any, pairs: list[Pair]) -> BatchGate | None:
    """What the workers do after the last label: every pair's completion, then the batch refresh."""
    for pair in pairs:
        pair_completed_handle(pair_id=pair.pk)
    return batch_refresh(project_id=project.pk, batch_key=f"import:{pairs[0].batch_id}")


def client_for(user: Any) -> Client:
    """A test client logged in as ``user``."""
    client = Client()
    client.force_login(user)
    return client
