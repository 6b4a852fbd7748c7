"""The Quality page (lead dashboard): figures, flagged batches, charts, and accepting a flagged batch."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from curation.agreement_refresh import project_refresh
from curation.models import BatchGate
from tests.curation.helpers import client_for

pytestmark = pytest.mark.usefixtures("curation_urls")


def test_dashboard_shows_figures_flagged_batch_and_charts(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    response = client_for(users["lena"]).get(reverse("curation:dashboard", args=[project.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and ("<circle" in html or "<polyline" in html)  # charts are inline SVG
    assert f"{curated['ok'].alpha:.3f}" in html  # 0.950
    assert f"{curated['flagged'].alpha:.3f}" in html  # 0.740
    assert "status-flagged" in html and "bad.jsonl" in html and "good.jsonl" in html
    assert "Accept batch" in html
    for name in ("alice", "bob", "carol"):
        assert name in html
    assert "Desired attribute" in html and "helpfulness" in html
    assert "cdn" not in html.lower() and '<script src="http' not in html


def test_dashboard_fragment_for_htmx(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    response = client_for(users["lena"]).get(reverse("curation:dashboard", args=[project.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="dashboard-body"')
    assert "<html" not in html
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_chart_draws_history(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    project_refresh(project_id=project.pk, force=True)
    html = client_for(users["lena"]).get(reverse("curation:dashboard", args=[project.pk])).content.decode()
    assert "<polyline" in html and "chart-threshold" in html


def test_lead_accepts_the_flagged_batch_from_the_dashboard(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    url = reverse("curation:batch-accept", args=[project.pk, curated["flagged"].pk])
    lena = client_for(users["lena"])
    response = lena.post(url, {"note": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Say why" in response.content.decode()
    assert BatchGate.objects.get(pk=curated["flagged"].pk).status == BatchGate.Status.FLAGGED

    response = lena.post(url, {"note": "Reviewed by hand."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Trigger"]
    gate = BatchGate.objects.get(pk=curated["flagged"].pk)
    assert (gate.status, gate.accepted_by) == (BatchGate.Status.ACCEPTED, users["lena"])
    assert "Accepted by a lead" in response.content.decode()
