"""Curation rounds: the reward model in the loop, on a tiny model and the packaged MiniLM embedder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from annotation.models import Pair
from annotation.services import assignment_claim_next, import_file
from curation import rounds
from curation.datasets import in_validation_split
from curation.models import CurationRound, DatasetVersion, Dispute, PairScore, VerifiedPair
from curation.rounds import round_config, round_create, round_resume, round_run
from curation.sampling import neighbours_for_probability
from tests.conftest import PASSWORD, wait_for
from tests.rewardmodel.conftest import jsonl

N_VERIFIED = 14


@pytest.fixture
def round_project(project: Any, tmp_path: Path, rm_records: list[dict[str, Any]]) -> Any:
    """48 imported pairs; 14 verified (some against the source label), one disputed."""
    import_file(project=project, path=jsonl(tmp_path / "pairs.jsonl", rm_records))
    pairs = list(Pair.objects.filter(project=project).order_by("pk"))
    for i, pair in enumerate(pairs[:N_VERIFIED]):
        VerifiedPair.objects.create(
            pair=pair,
            project=project,
            batch_key=f"import:{pair.batch_id}",
            side="A" if i % 4 else "B",
            strength="clearly",
            via="majority",
            verified_at=timezone.now(),
        )
    Dispute.objects.create(pair=pairs[N_VERIFIED], project=project, batch_key="import:1", reason="no_majority")
    return project


def small_config(base: str) -> dict[str, Any]:
    return {"base_model": base, "k_max": 8, "train": {"max_steps": 4, "batch_size": 4, "max_length": 64}}


def test_validation_split_is_stable_and_about_the_fraction() -> None:
    picks = [in_validation_split(i, 0.5) for i in range(2000)]
    assert picks == [in_validation_split(i, 0.5) for i in range(2000)]
    assert 0.45 < sum(picks) / 2000 < 0.55
    assert all(in_validation_split(i, 1.0) for i in range(100))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"k_max": 0}, "k_max"), ({"gold_val_fraction": 0}, "gold_val_fraction"), ({"colour": 1}, "colour")],
)
def test_bad_round_settings_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        round_config(overrides)
    assert field in info.value.message_dict


def test_a_whole_round_scores_retrieves_and_queues(round_project: Any, tiny_base: str, users: dict[str, Any]) -> None:
    project = round_project
    round_ = round_create(project=project, config=small_config(tiny_base), enqueue=False)
    done = round_run(round_id=round_.pk)
    assert done is not None and done.status == CurationRound.Status.DONE, done.error
    assert [row["status"] for row in done.step_rows()] == ["done"] * 6

    version = DatasetVersion.objects.get(round=done)
    counts = version.counts
    assert counts["gold_train"] + counts["gold_val"] == N_VERIFIED
    assert counts["silver"] == 48 - N_VERIFIED - 1  # the disputed pair is neither silver nor retrievable
    assert version.train_data.n_records == counts["silver"] + counts["gold_train"]

    scores = {s.pair_id: s for s in PairScore.objects.filter(model_version=done.model_version)}
    verified = dict(VerifiedPair.objects.filter(project=project).values_list("pair_id", "side"))
    assert set(scores) == set(verified)
    for pair_id, score in scores.items():
        r_w, r_l = (score.r_a, score.r_b) if verified[pair_id] == "A" else (score.r_b, score.r_a)
        assert score.p == pytest.approx(1 / (1 + math.exp(-(r_w - r_l))), abs=1e-4)
    assert done.metrics["n_mispredicted"] == sum(1 for s in scores.values() if s.p <= 0.5)
    assert done.model_version.is_current_best and done.metrics["gold_accuracy"] is not None

    queued = dict(Pair.objects.filter(project=project, priority__gt=0).values_list("pk", "priority"))
    assert len(queued) == done.metrics["n_queued"] == done.metrics["n_retrieved"]
    assert len(queued) <= sum(neighbours_for_probability(s.p, 8) for s in scores.values())
    assert not set(queued) & set(verified)
    assert not Dispute.objects.filter(pair_id__in=queued).exists()
    expected = {round(1 - s.p, 6) for s in scores.values()}
    assert {round(p, 6) for p in queued.values()} <= expected
    # The annotation queue now serves the most urgent retrieved pair first.
    first = assignment_claim_next(project=project, annotator=users["alice"])
    assert first.pair_id in queued and queued[first.pair_id] == max(queued.values())

    second = round_create(project=project, config=small_config(tiny_base), enqueue=False)
    second = round_run(round_id=second.pk)
    assert second.metrics["previous_gold_accuracy"] == done.metrics["gold_accuracy"]
    assert second.metrics["accuracy_delta"] == pytest.approx(
        second.metrics["gold_accuracy"] - done.metrics["gold_accuracy"]
    )


def test_a_failed_round_resumes_without_redoing_finished_steps(round_project: Any, tiny_base: str) -> None:
    round_ = round_create(project=round_project, config=small_config(tiny_base), enqueue=False)
    with mock.patch.object(rounds, "_step_embed", side_effect=RuntimeError("disk full")):
        failed = round_run(round_id=round_.pk)
    assert failed.status == CurationRound.Status.FAILED and "embed: RuntimeError: disk full" in failed.error
    job_id = failed.training_job_id
    with pytest.raises(ValidationError, match="already queued or running"):
        round_resume(round_=failed)
        round_create(project=round_project, config={}, enqueue=False)
    done = round_run(round_id=round_.pk)
    assert done.status == CurationRound.Status.DONE and done.training_job_id == job_id
    assert DatasetVersion.objects.filter(round=done).count() == 1


def test_round_without_training_data_fails_with_a_clear_message(project: Any, tiny_base: str) -> None:
    round_ = round_create(project=project, config=small_config(tiny_base), enqueue=False)
    failed = round_run(round_id=round_.pk)
    assert failed.status == CurationRound.Status.FAILED and "no training data" in failed.error


@pytest.mark.worker
def test_round_runs_on_the_gpu_queue_worker(celery_worker: Any, round_project: Any, tiny_base: str) -> None:
    round_ = round_create(project=round_project, config=small_config(tiny_base))
    done = wait_for(
        lambda: CurationRound.objects.filter(pk=round_.pk, status__in=["done", "failed"]).first(), timeout=300
    )
    assert done.status == CurationRound.Status.DONE, done.error


def test_round_pages_admins_start_leads_watch(
    client: Any,
    round_project: Any,
    tiny_base: str,
    users: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    url = reverse("curation:round-list", args=[round_project.pk])
    client.login(username="alice", password=PASSWORD)
    assert client.get(url).status_code == 403
    client.login(username="lena", password=PASSWORD)
    assert client.get(url).status_code == 200
    assert client.post(url, {"base_model": tiny_base}).status_code == 403
    client.login(username="adam", password=PASSWORD)
    form = {
        "base_model": tiny_base,
        "k_max": 8,
        "gold_val_fraction": 0.5,
        "num_epochs": 1,
        "learning_rate": 1e-4,
        "batch_size": 4,
        "max_length": 64,
        "max_steps": 4,
    }
    with (
        mock.patch("curation.tasks.curation_round_run_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(url, form)
    round_ = CurationRound.objects.get()
    delay.assert_called_once_with(round_id=round_.pk)
    detail = reverse("curation:round-detail", args=[round_project.pk, round_.pk])
    assert response["Location"] == detail
    assert 'hx-trigger="every 2s"' in client.get(detail, HTTP_HX_REQUEST="true").content.decode()
    round_run(round_id=round_.pk)
    assert client.get(detail, HTTP_HX_REQUEST="true").status_code == 286
    page = client.get(url).content.decode()
    assert "Round 1" in page and "train.jsonl" in page
    version = DatasetVersion.objects.get()
    download = client.get(reverse("curation:dataset-download", args=[round_project.pk, version.pk, "train"]))
    assert download.status_code == 200 and b'"chosen"' in b"".join(download.streaming_content)
