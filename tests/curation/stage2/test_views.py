"""Stage-2 pages and the command: roles on the server, bad input named, the run's figures shown."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client

from curation.stage2 import engine
from curation.stage2.models import Stage2Run
from rewardmodel.models import TrainingJob
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("curation_urls")]


def client_for(user: Any) -> Client:
    c = Client()
    assert c.login(username=user.username, password=PASSWORD)
    return c


def url(project: Any, run: Any = None, action: str = "") -> str:
    base = f"/curation/projects/{project.pk}/stage2/"
    if run is None:
        return base
    return f"{base}{run.pk}/" + (f"{action}/" if action else "")


def finished_run(project: Any) -> Stage2Run:
    run = engine.stage2_run_create(project=project, enqueue=False)
    for shard_id in run.shards.values_list("pk", flat=True):
        engine.stage2_shard_run(shard_id=shard_id)
    run.refresh_from_db()
    return run


def test_admin_starts_a_run_from_the_page(project: Any, pool: dict[str, Any], users: dict[str, Any]) -> None:
    with mock.patch("config.jobs.dispatch") as dispatch:
        response = client_for(users["adam"]).post(
            url(project), {"policy": "strict", "band": "0.1", "flip_margin": "0", "shard_size": "100"}
        )
    assert response.status_code == 302
    run = Stage2Run.objects.get()
    assert run.config["policy"] == "strict" and run.config["band"] == 0.1 and run.n_shards == 1
    assert dispatch.call_count == 0  # the test transaction never commits, so nothing is sent


def test_a_lead_sees_runs_but_cannot_start_one(project: Any, pool: dict[str, Any], users: dict[str, Any]) -> None:
    lead = client_for(users["lena"])
    assert lead.get(url(project)).status_code == 200
    assert (
        lead.post(url(project), {"policy": "paper", "band": "0", "flip_margin": "0", "shard_size": "100"}).status_code
        == 403
    )
    assert not Stage2Run.objects.exists()


def test_annotators_get_403(project: Any, pool: dict[str, Any], users: dict[str, Any]) -> None:
    assert client_for(users["alice"]).get(url(project)).status_code == 403


def test_bad_benchmark_upload_is_named_and_starts_nothing(
    project: Any, pool: dict[str, Any], users: dict[str, Any], tmp_path: Any, settings: Any
) -> None:
    settings.VAR_DIR = tmp_path
    bad = SimpleUploadedFile("rb.jsonl", b'{"prompt": "fine"}\n{oops\n')
    response = client_for(users["adam"]).post(
        url(project), {"policy": "paper", "band": "0", "flip_margin": "0", "shard_size": "100", "benchmark": bad}
    )
    assert response.status_code == 200
    assert "line 2: invalid JSON" in response.content.decode()
    assert not Stage2Run.objects.exists()


def test_run_page_shows_outcomes_by_source_and_examples(
    project: Any, pool: dict[str, Any], users: dict[str, Any]
) -> None:
    run = finished_run(project)
    page = client_for(users["lena"]).get(url(project, run)).content.decode()
    assert 'id="stage2-outcomes"' in page and "src-x" in page and f"pair {pool['pairs'][0].pk}" in page
    fragment = client_for(users["lena"]).get(url(project, run), HTTP_HX_REQUEST="true")
    assert fragment.status_code == 286  # finished: htmx stops polling


def test_pause_resume_cancel_buttons(project: Any, pool: dict[str, Any], users: dict[str, Any]) -> None:
    run = engine.stage2_run_create(project=project, enqueue=False)
    admin = client_for(users["adam"])
    assert client_for(users["lena"]).post(url(project, run, "pause")).status_code == 403
    admin.post(url(project, run, "pause"))
    run.refresh_from_db()
    assert run.status == "paused"
    admin.post(url(project, run, "resume"))
    run.refresh_from_db()
    assert run.status == "running"
    admin.post(url(project, run, "cancel"))
    run.refresh_from_db()
    assert run.status == "cancelled"
    response = admin.post(url(project, run, "pause"), follow=True)
    assert "only a running run can be paused" in response.content.decode()
    assert admin.post(url(project, run, "explode")).status_code == 404


def test_retrain_button_queues_a_job_from_the_best_model(
    project: Any, pool: dict[str, Any], users: dict[str, Any]
) -> None:
    run = finished_run(project)
    client_for(users["adam"]).post(url(project, run, "train"))
    job = TrainingJob.objects.get()
    assert job.base_model == pool["best"].path and job.train_data_id == run.dataset_version.train_data_id
    run.refresh_from_db()
    assert run.training_job_id == job.pk


def test_command_prints_a_json_summary(project: Any, pool: dict[str, Any]) -> None:
    out = StringIO()
    call_command("stage2", "--project", project.name, "--policy", "strict", stdout=out)
    summary = json.loads(out.getvalue())
    assert summary["status"] == "done" and summary["outcomes"] == {"kept": 6, "discarded": 4, "flipped": 2}


def test_command_names_bad_input(project: Any, pool: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="no project named"):
        call_command("stage2", "--project", "nope")
    with pytest.raises(CommandError, match="band"):
        call_command("stage2", "--project", project.name, "--band", "0.7")
    assert not Stage2Run.objects.exists()


def test_the_run_page_estimates_wall_time_for_the_run_and_for_40m_pairs(
    project: Any, pool: dict[str, Any], users: dict[str, Any]
) -> None:
    from curation.stage2.estimate import CPU_PAIRS_PER_S_PER_CORE, PAPER_POOL, wall_time_s

    run = finished_run(project)
    page = client_for(users["lena"]).get(url(project, run)).content.decode()
    block = page.split('id="stage2-estimate"', 1)[1].split("</details>", 1)[0]
    assert "docs/benchmarks.md" in block and "What 40M pairs would take" in block
    assert f"This run ({run.n_pairs} pairs)" in block and "40,000,000 pairs" in block
    one_core_40m = wall_time_s(PAPER_POOL, CPU_PAIRS_PER_S_PER_CORE, 1) / 86400
    assert f"{one_core_40m:,.0f} days" in block  # one CPU core on the paper's pool
    assert "24.8 hours" in block and "(assumed)" not in block  # 8 H200s at the measured 56 pairs/s each


def test_admin_sets_the_runs_max_length_and_a_bad_one_is_named(
    project: Any, pool: dict[str, Any], users: dict[str, Any]
) -> None:
    admin = client_for(users["adam"])
    form = {"policy": "paper", "band": "0", "flip_margin": "0", "shard_size": "100"}
    response = admin.post(url(project), {**form, "max_length": "8"})
    assert response.status_code == 200 and not Stage2Run.objects.exists()
    assert "max_length" in response.context["form"].errors
    with mock.patch("config.jobs.dispatch"):
        assert admin.post(url(project), {**form, "max_length": "256"}).status_code == 302
    assert Stage2Run.objects.get().config["max_length"] == 256
