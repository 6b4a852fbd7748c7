"""The lead's data browser and the admin's job page in headless Chromium at 1400x900.

Needs Chromium (CHROMIUM_PATH); skipped without it, failing instead when REQUIRE_SERVICES=1.
With SAVE_SCREENSHOTS=1 the pages are also saved to docs/screenshots/ (README links them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.annotation.test_browser import browser_page, log_in  # noqa: F401  (fixture)
from tests.curation.helpers import FAILING, WITH_MISSING, label_matrix, make_batch, settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Any, name: str) -> None:
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
def lead_data(project: Any, users: dict[str, Any], no_broker: Any) -> dict[str, Any]:
    from curation.agreement_refresh import project_refresh

    trio = [users["alice"], users["bob"], users["carol"]]
    _, good = make_batch(project, 3, "good.jsonl")
    _, bad = make_batch(project, 3, "bad.jsonl")
    _, fresh = make_batch(project, 4, "fresh.jsonl")
    label_matrix(project, trio, list(zip(good + bad, WITH_MISSING + FAILING, strict=True)))
    settle(project, good)
    settle(project, bad)
    project_refresh(project_id=project.pk)
    return {"good": good, "bad": bad, "fresh": fresh}


def rows(page: Any) -> list[int]:
    return [int(x) for x in page.locator("tr.pair-row").evaluate_all("rs => rs.map(r => r.dataset.pair)")]


def test_lead_filters_the_pair_browser(
    live_server: Any,
    project: Any,
    users: dict[str, Any],
    lead_data: dict[str, Any],
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server.url, "lena")
    page.goto(f"{live_server.url}/curation/projects/{project.pk}/pairs/")
    assert len(rows(page)) == 10
    shot(page, "lead-pair-browser")

    with page.expect_response(lambda r: "/pairs/?" in r.url and "status=disputed" in r.url):
        page.select_option("#id_status", "disputed")
    page.wait_for_function("document.querySelectorAll('tr.pair-row').length === 2")
    assert sorted(rows(page)) == sorted([lead_data["good"][2].pk, lead_data["bad"][2].pk])
    assert "status=disputed" in page.url  # the filter is in the address, so it can be shared and reloaded

    page.select_option("#id_status", "")
    page.wait_for_function("document.querySelectorAll('tr.pair-row').length === 10")
    target = lead_data["fresh"][1]
    page.fill("#id_q", target.conversation[-1]["content"])
    page.wait_for_function("document.querySelectorAll('tr.pair-row').length === 1")
    assert rows(page) == [target.pk]

    page.fill("#id_q", "")
    page.select_option("#id_agreement", "split")
    page.wait_for_function("document.querySelectorAll('tr.pair-row').length === 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400  # no horizontal scroll

    page.click(f"tr.pair-row[data-pair='{lead_data['good'][2].pk}'] a")
    page.wait_for_load_state("load")
    assert page.locator("article.label-card").count() == 3
    shot(page, "lead-pair-detail")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    page.goto(f"{live_server.url}/curation/projects/{project.pk}/annotators/{users['alice'].pk}/")
    assert page.locator("#verdict-agreement").is_visible()
    shot(page, "lead-annotator")
    page.goto(f"{live_server.url}/curation/projects/{project.pk}/rounds/")
    shot(page, "admin-rounds-missing")
    assert page.js_errors == []


def test_job_page_fits_the_window(
    live_server: Any,
    users: dict[str, Any],
    browser_page: Any,  # noqa: F811
    tmp_path: Path,
    rm_records: list[dict[str, Any]],
) -> None:
    from rewardmodel.models import TrainingJob
    from rewardmodel.services import dataset_file_register
    from tests.rewardmodel.conftest import jsonl

    data = dataset_file_register(path=jsonl(tmp_path / "t.jsonl", rm_records[:10]), name="t")
    long_line = "step 10/60 " + " ".join(f"metric_{i}=0.{i:04d}" for i in range(60))
    job = TrainingJob.objects.create(
        name="wide",
        train_data=data,
        base_model="default",
        config={"bf16": True, "learning_rate": 2e-5, "output_dir": "/very/long/" + "x" * 300},
        status=TrainingJob.Status.SUCCEEDED,
        device="cpu",
        log="\n".join([long_line] * 5),
        curve=[{"step": s, "loss": 0.7 - s / 200, "accuracy": 0.5 + s / 200} for s in range(0, 61, 10)],
        step=60,
        total_steps=60,
        progress=1.0,
    )
    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    log_in(page, live_server.url, "adam")
    page.goto(f"{live_server.url}/models/jobs/{job.pk}/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
    assert page.locator("#config-bf16").inner_text().startswith("False")
    shot(page, "admin-job")
    page.goto(f"{live_server.url}/models/jobs/new/")
    assert page.locator("input[name=preset][value=cpu_quick]").is_checked()
    shot(page, "admin-job-form")
