"""Helpers for curation tests: batches of pairs and labelling them through the annotation services."""

from __future__ import annotations

from typing import Any

from annotation.models import Annotation, ImportBatch, Pair, Project
from annotation.services import AnnotationInput, annotation_submit, assignment_claim_next
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
