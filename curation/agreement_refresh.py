"""Agreement refresh: the debounced requests for a batch's or a project's figures, the refreshes
that answer them (new snapshots; the batch's gate decided and applied), and the catch-up sweep.

The flow (see ``curation/receivers.py`` and ``curation/tasks.py``):

1. A label arrives -> :func:`agreement_request_for_pair` for its batch (debounced recomputation).
2. A pair gets all its labels -> :func:`pair_completed_handle`: the project's dispute rule either
   opens a dispute (lead review, :mod:`curation.disputes`) or leaves the pair waiting for its
   batch's gate.
3. :func:`batch_refresh` recomputes the batch's alpha per dimension (a new snapshot), decides the
   gate (``ok`` / ``flagged`` / ``pending``, or ``accepted`` by a lead) and applies it
   (:func:`curation.gate.batch_gate_apply`: waiting pairs verified, retests drawn).
4. :func:`project_refresh` recomputes the project-wide and per-annotator figures.
5. :func:`agreement_sweep` (beat) re-sends whatever a lost message left undone.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotation.models import Pair, Project
from curation.agreement_figures import agreement_figures, agreement_from_columns, annotator_figures, label_columns
from curation.batches import batch_key_for, batch_keys, batch_pairs
from curation.disputes import pair_evaluate
from curation.gate import batch_gate_apply, gate_get_or_create, gate_status
from curation.models import AgreementSnapshot, BatchGate, CurationSettings
from curation.project_settings import curation_settings_get_or_create

logger = logging.getLogger(__name__)

Rng = random.Random


def _debounce_s() -> float:
    return float(getattr(settings, "CURATION_AGREEMENT_DEBOUNCE_S", 5.0))


def _request(project_id: int, batch_key: str) -> None:
    """Bump the request counters of a batch and its project; enqueue a refresh after commit when
    none is outstanding.

    Debounce protocol (the same for the project's counters on CurationSettings):
    - a request bumps ``requested_seq`` under the row lock, and enqueues a refresh (with the
      debounce countdown) only if no earlier request is still unanswered;
    - a refresh reads ``requested_seq`` *before* reading labels, computes, records it as
      ``computed_seq``, and re-enqueues itself if a request arrived meanwhile
      (:func:`_enqueue_if_behind`).
    So labels arriving within a window cost one computation, a label committed before a request
    is always seen by the computation that answers it, and no request is left unanswered (a lost
    message is re-sent by :func:`agreement_sweep`).
    """
    gate = gate_get_or_create(project_id, batch_key)
    settings_row, _ = CurationSettings.objects.get_or_create(project_id=project_id)
    # Lock both rows: the outstanding-request check and the bump must not interleave with a
    # refresh recording its computation, or a request could be neither answered nor re-enqueued.
    gate = BatchGate.objects.select_for_update().get(pk=gate.pk)
    batch_idle = gate.requested_seq <= gate.computed_seq
    BatchGate.objects.filter(pk=gate.pk).update(requested_seq=F("requested_seq") + 1)
    settings_row = CurationSettings.objects.select_for_update().get(pk=settings_row.pk)
    project_idle = settings_row.agreement_requested_seq <= settings_row.agreement_computed_seq
    CurationSettings.objects.filter(pk=settings_row.pk).update(agreement_requested_seq=F("agreement_requested_seq") + 1)
    if batch_idle:
        transaction.on_commit(lambda: _enqueue_batch_refresh(project_id, batch_key), robust=True)
    if project_idle:
        transaction.on_commit(lambda: _enqueue_project_refresh(project_id), robust=True)


def _enqueue_batch_refresh(project_id: int, batch_key: str) -> None:
    from curation.tasks import batch_refresh_task

    batch_refresh_task.apply_async(kwargs={"project_id": project_id, "batch_key": batch_key}, countdown=_debounce_s())


def _enqueue_project_refresh(project_id: int) -> None:
    from curation.tasks import project_refresh_task

    project_refresh_task.apply_async(kwargs={"project_id": project_id}, countdown=_debounce_s())


def _enqueue_if_behind(*, project_id: int, batch_key: str | None = None) -> None:
    """After a refresh: if a request arrived while it computed, schedule the next one."""
    if batch_key is not None:
        if BatchGate.objects.filter(
            project_id=project_id, batch_key=batch_key, requested_seq__gt=F("computed_seq")
        ).exists():
            transaction.on_commit(lambda: _enqueue_batch_refresh(project_id, batch_key), robust=True)
    elif CurationSettings.objects.filter(
        project_id=project_id, agreement_requested_seq__gt=F("agreement_computed_seq")
    ).exists():
        transaction.on_commit(lambda: _enqueue_project_refresh(project_id), robust=True)


def agreement_request(*, project_id: int, batch_key: str) -> None:
    """Ask for a (debounced) recomputation of a batch's and its project's agreement."""
    with transaction.atomic():
        _request(project_id, batch_key)


def agreement_request_for_pair(*, pair_id: int) -> None:
    """A label arrived on ``pair_id``: recompute its batch and project (debounced)."""
    row = Pair.objects.filter(pk=pair_id).values("project_id", "batch_id").first()
    if row is None:
        logger.info("pair %s is gone; no agreement to recompute", pair_id)
        return
    agreement_request(project_id=row["project_id"], batch_key=batch_key_for(row["batch_id"]))


def pair_completed_handle(*, pair_id: int) -> str:
    """A pair got all its labels: apply the dispute rule and ask for its batch's gate to be re-run."""
    row = Pair.objects.filter(pk=pair_id).values("project_id", "batch_id").first()
    if row is None:
        logger.info("pair %s is gone; nothing to curate", pair_id)
        return "missing"
    outcome = pair_evaluate(pair_id=pair_id)
    agreement_request(project_id=row["project_id"], batch_key=batch_key_for(row["batch_id"]))
    return outcome


def batch_refresh(*, project_id: int, batch_key: str, force: bool = False, rng: Rng | None = None) -> BatchGate | None:
    """Recompute a batch's agreement, store a snapshot, decide its gate and apply it.

    Debounced: returns None without computing when no request is newer than the last
    computation (``force`` computes anyway). Returns the updated gate.
    """
    gate = BatchGate.objects.filter(project_id=project_id, batch_key=batch_key).first()
    if gate is None:
        if not force:
            logger.info("no gate for %s in project %s; nothing requested", batch_key, project_id)
            return None
        gate = gate_get_or_create(project_id, batch_key)
    read_at = timezone.now()  # every label committed before this is seen below (curation/sweep.py relies on it)
    target = gate.requested_seq  # read before the labels: every label committed before it is seen below
    if not force and gate.computed_seq >= target:
        return None
    project = Project.objects.get(pk=project_id)
    row = curation_settings_get_or_create(project=project)
    figures = agreement_figures(project, batch_key)
    counts = batch_pairs(project, batch_key).aggregate(
        n=Count("id"), complete=Count("id", filter=Q(status=Pair.Status.COMPLETE))
    )
    now = timezone.now()
    with transaction.atomic():
        # Lock the gate row: a lead accepting this batch right now must not be overwritten by us.
        gate = BatchGate.objects.select_for_update().get(pk=gate.pk)
        gate.alpha = figures.preference
        gate.threshold = row.alpha_threshold
        gate.figures = figures.figures
        gate.n_units, gate.n_labels = figures.n_units, figures.n_labels
        gate.n_pairs, gate.n_complete = counts["n"], counts["complete"]
        gate.status = gate_status(gate, row, figures.preference, counts["n"], counts["complete"])
        gate.computed_at = now
        gate.labels_read_at = max(gate.labels_read_at or read_at, read_at)
        gate.computed_seq = max(gate.computed_seq, target)
        gate.save()
        scope = AgreementSnapshot.Scope.BATCH if batch_key.startswith("import:") else AgreementSnapshot.Scope.ROUND
        AgreementSnapshot.objects.create(
            project=project,
            scope=scope,
            scope_key=batch_key,
            figures=figures.figures,
            n_units=figures.n_units,
            n_labels=figures.n_labels,
            computed_at=now,
        )
    if gate.status == BatchGate.Status.FLAGGED:
        logger.warning(
            "batch %s of project %s flagged: preference alpha %.3f < %.2f",
            batch_key,
            project_id,
            gate.alpha,
            gate.threshold,
        )
    batch_gate_apply(gate=gate, settings_row=row, rng=rng)
    _enqueue_if_behind(project_id=project_id, batch_key=batch_key)
    return gate


def project_refresh(*, project_id: int, force: bool = False) -> AgreementSnapshot | None:
    """Recompute the project-wide figures and every annotator's agreement (new snapshots).

    Debounced like :func:`batch_refresh`. Returns the project snapshot, or None when skipped.
    """
    row = CurationSettings.objects.filter(project_id=project_id).select_related("project").first()
    if row is None:
        if not force:
            return None
        project = Project.objects.filter(pk=project_id).first()
        if project is None:
            return None
        row = curation_settings_get_or_create(project=project)
    target = row.agreement_requested_seq
    if not force and row.agreement_computed_seq >= target:
        return None
    project = row.project
    columns = label_columns(project)
    figures = agreement_from_columns(columns, list(project.desired_attributes))
    per_annotator = annotator_figures(project, columns)
    now = timezone.now()
    with transaction.atomic():
        snapshot = AgreementSnapshot.objects.create(
            project=project,
            scope=AgreementSnapshot.Scope.PROJECT,
            scope_key="",
            figures=figures.figures,
            n_units=figures.n_units,
            n_labels=figures.n_labels,
            computed_at=now,
        )
        AgreementSnapshot.objects.bulk_create(
            AgreementSnapshot(
                project=project,
                scope=AgreementSnapshot.Scope.ANNOTATOR,
                scope_key=str(annotator_id),
                figures=stats,
                n_units=stats["n_labels"],
                n_labels=stats["n_labels"],
                computed_at=now,
            )
            for annotator_id, stats in per_annotator.items()
        )
        # Lock as _request does, so a request either sees this computation or is re-enqueued below.
        CurationSettings.objects.select_for_update().filter(pk=row.pk).first()
        CurationSettings.objects.filter(pk=row.pk, agreement_computed_seq__lt=target).update(
            agreement_computed_seq=target
        )
    _enqueue_if_behind(project_id=project_id)
    return snapshot


def agreement_sweep() -> int:
    """Catch up on curation work whose messages were lost (a broker outage, a killed worker).

    1. Every complete pair whose verdict was never computed (no dispute, no verification, and no
       gate computation saw its last label; :func:`curation.sweep.pairs_missing_verdict`) goes
       through the dispute rule now, and its batch's gate is requested again.
    2. Refreshes whose request is newer than their computation are sent again.

    Works from the rows alone, so it finds the work whatever messages were lost. Sending never
    raises: with the broker still down the requests stay recorded for the next sweep. Returns how
    many pairs and scopes it acted on.
    """
    from curation.sweep import pairs_missing_verdict
    from curation.tasks import batch_refresh_task, project_refresh_task

    count = 0
    scopes: set[tuple[int, str]] = set()
    for pair_id, project_id, batch_key in pairs_missing_verdict():
        pair_evaluate(pair_id=pair_id)
        scopes.add((project_id, batch_key))
        count += 1
    for project_id, batch_key in sorted(scopes):
        agreement_request(project_id=project_id, batch_key=batch_key)

    def send(task: Any, **kwargs: Any) -> int:
        try:
            task.delay(**kwargs)
        except Exception as exc:  # the request stays recorded; the next sweep sends it again
            logger.warning("agreement sweep could not queue %s %s: %s", task.name, kwargs, exc)
            return 0
        return 1

    for project_id, batch_key in BatchGate.objects.filter(requested_seq__gt=F("computed_seq")).values_list(
        "project_id", "batch_key"
    ):
        count += send(batch_refresh_task, project_id=project_id, batch_key=batch_key)
    for project_id in CurationSettings.objects.filter(
        agreement_requested_seq__gt=F("agreement_computed_seq")
    ).values_list("project_id", flat=True):
        count += send(project_refresh_task, project_id=project_id)
    return count


def project_refresh_all(*, project: Project, rng: Rng | None = None) -> None:
    """Recompute every batch (applying the gate) and the project now, in this process."""
    for key in batch_keys(project):
        gate_get_or_create(project.pk, key)
        batch_refresh(project_id=project.pk, batch_key=key, force=True, rng=rng)
    project_refresh(project_id=project.pk, force=True)
