"""Agreement refresh: debounced requests, the batch and project refreshes that answer them, the
Celery tasks and signals that carry them, and the catch-up sweep.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from annotation.models import Pair
from curation.agreement_refresh import agreement_request, batch_refresh, project_refresh
from curation.models import AgreementSnapshot, BatchGate, VerifiedPair
from tests.curation.helpers import A_CLEARLY, FAILING, PASSING, label_matrix, make_batch, package_alpha, settle


def test_project_refresh_stores_project_and_per_annotator_figures(project: Any, trio: list[Any]) -> None:
    _, first = make_batch(project, 3, "one.jsonl")
    _, second = make_batch(project, 3, "two.jsonl")
    label_matrix(project, trio, list(zip(first + second, PASSING + FAILING, strict=True)))
    settle(project, first)
    settle(project, second)

    snapshot = project_refresh(project_id=project.pk)

    assert snapshot is not None
    assert snapshot.figures["preference"] == pytest.approx(package_alpha(PASSING + FAILING), abs=1e-12)
    assert (snapshot.n_units, snapshot.n_labels) == (6, 18)
    per_annotator = {
        int(s.scope_key): s.figures for s in AgreementSnapshot.objects.filter(project=project, scope="annotator")
    }
    assert set(per_annotator) == {u.pk for u in trio}
    # Sides (alice, bob, carol): A,A,A / B,B,B / A,B,B in both batches. Each label is compared with
    # the two others on its pair: alice agrees on 2+2+0 per batch -> 8/12; bob and carol 2+2+1 -> 10/12.
    assert per_annotator[trio[2].pk]["agreement_rate"] == pytest.approx(10 / 12)
    assert per_annotator[trio[0].pk]["agreement_rate"] == pytest.approx(8 / 12)
    assert per_annotator[trio[0].pk]["n_labels"] == 6
    assert per_annotator[trio[0].pk]["retest"] == {"n": 0, "agree": 0, "agree_strength": 0, "rate": None}


def test_refresh_is_debounced_by_request_counters(project: Any, trio: list[Any]) -> None:
    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    gate = settle(project, pairs)
    assert gate is not None
    key = gate.batch_key
    snapshots = AgreementSnapshot.objects.filter(scope="batch", scope_key=key)
    assert snapshots.count() == 1

    assert batch_refresh(project_id=project.pk, batch_key=key) is None  # nothing new was requested
    assert snapshots.count() == 1
    agreement_request(project_id=project.pk, batch_key=key)
    agreement_request(project_id=project.pk, batch_key=key)
    assert batch_refresh(project_id=project.pk, batch_key=key) is not None  # one computation answers both
    assert batch_refresh(project_id=project.pk, batch_key=key) is None
    assert snapshots.count() == 2
    assert project_refresh(project_id=project.pk) is not None
    assert project_refresh(project_id=project.pk) is None


def test_completion_and_labels_enqueue_tasks_after_commit(
    project: Any, trio: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from curation import tasks

    _, pairs = make_batch(project, 1)
    with (
        mock.patch.object(tasks.pair_completed_task, "delay") as completed,
        mock.patch.object(tasks.agreement_request_task, "delay") as requested,
        mock.patch.object(tasks.retest_record_task, "delay") as retest,
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            label_matrix(project, [trio[0]], [(pairs[0], [A_CLEARLY])])
        assert callbacks and not requested.called  # nothing is enqueued before the commit
        for annotator in trio[1:]:
            with django_capture_on_commit_callbacks(execute=True):
                label_matrix(project, [annotator], [(pairs[0], [A_CLEARLY])])
    assert requested.call_args_list == [mock.call(pair_id=pairs[0].pk)] * 2
    completed.assert_called_once_with(pair_id=pairs[0].pk)
    assert not retest.called


def test_signals_enqueue_tasks_and_survive_a_broker_outage(
    project: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from annotation.models import Annotation
    from annotation.signals import annotation_submitted, pair_completed
    from curation import tasks

    with (
        mock.patch.object(tasks.pair_completed_task, "delay") as delay,
        mock.patch.object(tasks.retest_record_task, "delay", side_effect=OSError("broker down")) as retest,
        django_capture_on_commit_callbacks(execute=True),
    ):
        pair_completed.send(sender=Pair, pair_id=42, project_id=project.pk)
        # a failing enqueue is logged, not raised into the annotator's request
        annotation_submitted.send(sender=Annotation, annotation_id=7, pair_id=42, project_id=project.pk, is_retest=True)
    delay.assert_called_once_with(pair_id=42)
    retest.assert_called_once_with(annotation_id=7)


def test_agreement_request_enqueues_debounced_refreshes(
    project: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from curation import tasks

    settings.CURATION_AGREEMENT_DEBOUNCE_S = 3
    with (
        mock.patch.object(tasks.batch_refresh_task, "apply_async") as batch_task,
        mock.patch.object(tasks.project_refresh_task, "apply_async") as project_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        agreement_request(project_id=project.pk, batch_key="import:none")
    batch_task.assert_called_once_with(kwargs={"project_id": project.pk, "batch_key": "import:none"}, countdown=3.0)
    project_task.assert_called_once_with(kwargs={"project_id": project.pk}, countdown=3.0)
    gate = BatchGate.objects.get(project=project, batch_key="import:none")
    assert (gate.requested_seq, gate.computed_seq) == (1, 0)


def test_tasks_call_their_services(project: Any, trio: list[Any]) -> None:
    from curation.tasks import batch_refresh_task, pair_completed_task, project_refresh_task

    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    for pair in pairs:
        pair_completed_task(pair_id=pair.pk)
    batch_refresh_task(project_id=project.pk, batch_key=f"import:{pairs[0].batch_id}")
    project_refresh_task(project_id=project.pk)
    assert VerifiedPair.objects.count() == 3
    assert AgreementSnapshot.objects.filter(scope="project").count() == 1
    pair_completed_task(pair_id=123456)  # a missing pair ends quietly


def test_one_refresh_is_enqueued_per_window_and_a_late_request_is_not_lost(
    project: Any, trio: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from curation import agreement_figures, agreement_refresh, tasks

    _, pairs = make_batch(project, 3)
    label_matrix(project, trio, list(zip(pairs, PASSING, strict=True)))
    key = f"import:{pairs[0].batch_id}"
    real = agreement_figures.agreement_figures

    def labels_arrive_meanwhile(*args: Any, **kwargs: Any) -> Any:
        figures = real(*args, **kwargs)
        agreement_request(project_id=project.pk, batch_key=key)  # outstanding: enqueues nothing itself
        return figures

    with (
        mock.patch.object(tasks.batch_refresh_task, "apply_async") as batch_task,
        mock.patch.object(tasks.project_refresh_task, "apply_async") as project_task,
    ):
        with django_capture_on_commit_callbacks(execute=True):
            for _ in range(3):
                agreement_request(project_id=project.pk, batch_key=key)
        assert (batch_task.call_count, project_task.call_count) == (1, 1)  # the burst shares one refresh each

        with (
            django_capture_on_commit_callbacks(execute=True),
            mock.patch.object(agreement_refresh, "agreement_figures", labels_arrive_meanwhile),
        ):
            assert batch_refresh(project_id=project.pk, batch_key=key) is not None
        assert batch_task.call_count == 2  # the refresh saw the late request and scheduled the next one

        with django_capture_on_commit_callbacks(execute=True):
            assert batch_refresh(project_id=project.pk, batch_key=key) is not None
            assert batch_refresh(project_id=project.pk, batch_key=key) is None
        assert batch_task.call_count == 2

        real_columns = agreement_figures.label_columns

        def label_arrives_meanwhile(*args: Any, **kwargs: Any) -> Any:
            columns = real_columns(*args, **kwargs)
            agreement_request(project_id=project.pk, batch_key=key)
            return columns

        with (
            django_capture_on_commit_callbacks(execute=True),
            mock.patch.object(agreement_refresh, "label_columns", label_arrives_meanwhile),
        ):
            assert project_refresh(project_id=project.pk) is not None
        assert project_task.call_count == 2  # the same for the project's figures
        with django_capture_on_commit_callbacks(execute=True):
            assert project_refresh(project_id=project.pk) is not None
            assert project_refresh(project_id=project.pk) is None
        assert project_task.call_count == 2


def test_sweep_re_enqueues_unanswered_requests(project: Any) -> None:
    from curation import tasks
    from curation.agreement_refresh import agreement_sweep

    agreement_request(project_id=project.pk, batch_key="import:none")  # its enqueue "was lost" (never committed)
    with (
        mock.patch.object(tasks.batch_refresh_task, "delay") as batch_task,
        mock.patch.object(tasks.project_refresh_task, "delay") as project_task,
    ):
        assert agreement_sweep() == 2
    batch_task.assert_called_once_with(project_id=project.pk, batch_key="import:none")
    project_task.assert_called_once_with(project_id=project.pk)
    batch_refresh(project_id=project.pk, batch_key="import:none")
    project_refresh(project_id=project.pk)
    assert agreement_sweep() == 0
