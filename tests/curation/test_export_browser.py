"""The new user's journey in Chromium: a lead resolves a dispute, the admin exports, the line carries the lead's label.

Needs Chromium (CHROMIUM_PATH); skipped without it, failing when REQUIRE_SERVICES=1 (see tests/annotation/test_browser.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from curation.models import BatchGate, Dispute, VerifiedPair
from tests.annotation import test_browser
from tests.curation.helpers import A_CLEARLY, FAILING, WITH_MISSING, label_matrix, make_batch, settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("curation_urls")]
browser_page = test_browser.browser_page
log_in = test_browser.log_in


def test_lead_resolves_a_dispute_and_the_export_carries_the_leads_label(
    live_server: Any,
    project: Any,
    users: dict[str, Any],
    trio: list[Any],
    no_broker: Any,
    browser_page: Any,
    tmp_path: Path,
) -> None:
    _, first = make_batch(project, 3, "one.jsonl")
    _, second = make_batch(project, 3, "two.jsonl")
    label_matrix(project, trio, list(zip(first + second, WITH_MISSING + FAILING, strict=True)))
    assert settle(project, first).status == BatchGate.Status.OK  # type: ignore[union-attr]
    assert settle(project, second).status == BatchGate.Status.FLAGGED  # type: ignore[union-attr]
    dispute = Dispute.objects.get(pair=first[2])  # the annotators said B slightly, one could not decide
    page, base = browser_page, live_server.url

    log_in(page, base, "lena")
    page.goto(f"{base}/curation/projects/{project.pk}/disputes/{dispute.pk}/")
    page.check(f"input[name=decision][value={A_CLEARLY}]")
    page.fill("#id_note", "A cites the source; B misreads it.")
    page.uncheck("#id_next")
    page.click("#resolve-panel button[type=submit]")
    page.wait_for_selector("#resolve-panel >> text=Verified")
    assert VerifiedPair.objects.get(pair=first[2]).via == "lead"
    page.context.clear_cookies()

    log_in(page, base, "adam")
    page.goto(f"{base}/projects/{project.pk}/export/")  # the old address still leads to the export page
    assert page.url.endswith(f"/curation/projects/{project.pk}/export/")
    assert page.inner_text("#export-counts").count("1") >= 1
    with page.expect_download() as download_info:
        page.click("#export-form button[type=submit]")
    path = tmp_path / "export.jsonl"
    download_info.value.save_as(str(path))
    rows = {r["pair_id"]: r for r in map(json.loads, path.read_text().splitlines())}

    assert sorted(rows) == sorted([first[0].pk, first[1].pk, first[2].pk])
    lead = rows[first[2].pk]
    assert (lead["label"], lead["via"], lead["verified"], lead["majority"]) == ("A_CLEARLY", "lead", True, "B_SLIGHTLY")
    assert lead["chosen"][0]["content"] == first[2].response_a
    for pair in second:  # gated (flagged batch) and disputed pairs are absent by default
        assert pair.pk not in rows
    assert page.js_errors == []  # type: ignore[attr-defined]
