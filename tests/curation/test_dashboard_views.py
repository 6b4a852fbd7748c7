"""Lead pages: access rules, what they show, and the resolve / accept actions."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from curation.models import BatchGate, Dispute, DisputeResolution, PairScore, VerifiedPair
from curation.services import project_refresh
from tests.curation.helpers import label_matrix, make_batch
from tests.curation.test_gate import FAILING, WITH_MISSING, settle

pytestmark = pytest.mark.usefixtures("curation_urls")


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def curated(project: Any, trio: list[Any]) -> dict[str, Any]:
    """A passing batch with one dispute (can't decide) and a flagged batch with one (strength split)."""
    _, good = make_batch(project, 3, "good.jsonl")
    _, bad = make_batch(project, 3, "bad.jsonl")
    label_matrix(project, trio, list(zip(good + bad, WITH_MISSING + FAILING, strict=True)))
    ok_gate = settle(project, good)
    flagged_gate = settle(project, bad)
    project_refresh(project_id=project.pk)
    return {
        "ok": ok_gate,
        "flagged": flagged_gate,
        "dispute": Dispute.objects.get(pair=good[2]),
        "flagged_dispute": Dispute.objects.get(pair=bad[2]),
    }


def urls(project: Any, curated: dict[str, Any]) -> list[str]:
    return [
        reverse("curation:dashboard", args=[project.pk]),
        reverse("curation:dispute-list", args=[project.pk]),
        reverse("curation:dispute-review", args=[project.pk, curated["dispute"].pk]),
        reverse("curation:settings", args=[project.pk]),
    ]


def test_pages_are_for_leads_and_admins(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    for url in urls(project, curated):
        assert client_for(users["lena"]).get(url).status_code == 200, url
        assert client_for(users["adam"]).get(url).status_code == 200, url
        assert client_for(users["alice"]).get(url).status_code == 403, url  # an annotator of the project
        assert client_for(users["dave"]).get(url).status_code == 404, url  # not a member: the project is hidden
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_a_lead_outside_the_project_gets_404(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    from annotation.services import user_create

    outsider = user_create(username="olga", password="pw-for-tests-1", roles=["lead"])
    for url in urls(project, curated):
        assert client_for(outsider).get(url).status_code == 404


def test_actions_refuse_annotators(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    review = reverse("curation:dispute-review", args=[project.pk, curated["dispute"].pk])
    accept = reverse("curation:batch-accept", args=[project.pk, curated["flagged"].pk])
    alice = client_for(users["alice"])
    assert alice.post(review, {"decision": "A_CLEARLY", "note": "me"}).status_code == 403
    assert alice.post(accept, {"note": "me"}).status_code == 403
    assert not DisputeResolution.objects.exists()


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


def test_dispute_queue_filters_by_status(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    from curation.services import dispute_resolve

    dispute_resolve(dispute_id=curated["dispute"].pk, lead=users["lena"], decision="B_SLIGHTLY", note="fine")
    url = reverse("curation:dispute-list", args=[project.pk])
    lena = client_for(users["lena"])
    review_open = reverse("curation:dispute-review", args=[project.pk, curated["flagged_dispute"].pk])
    review_resolved = reverse("curation:dispute-review", args=[project.pk, curated["dispute"].pk])

    html = lena.get(url).content.decode()  # open by default
    assert review_open in html and review_resolved not in html
    html = lena.get(url, {"status": "resolved"}, HTTP_HX_REQUEST="true").content.decode()
    assert review_resolved in html and review_open not in html and "<html" not in html
    html = lena.get(url, {"status": "all"}).content.decode()
    assert review_resolved in html and review_open in html
    assert lena.get(url, {"status": "nonsense"}).status_code == 200  # bad filter: the default queue


def test_review_page_shows_everything_a_lead_needs(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    from rewardmodel.models import ModelVersion

    dispute = curated["dispute"]
    pair = dispute.pair
    pair.conversation = [{"role": "user", "content": "Is **water** wet?"}]
    pair.response_a = "Yes, *mostly*."
    pair.response_b = "<script>alert(1)</script> No."
    pair.save()
    version = ModelVersion.objects.create(
        name="rm-1", scope=f"project:{project.pk}", base_model="tiny", path="/tmp/rm-1", is_current_best=True
    )
    PairScore.objects.create(pair=pair, model_version=version, r_a=0.25, r_b=1.5, p=None)

    html = (
        client_for(users["lena"])
        .get(reverse("curation:dispute-review", args=[project.pk, dispute.pk]))
        .content.decode()
    )

    assert "<strong>water</strong>" in html and "<em>mostly</em>" in html  # markdown rendered
    assert "<script>alert(1)</script>" not in html  # and sanitised
    for name in ("alice", "bob", "carol"):
        assert name in html
    assert "Chose B_SLIGHTLY." in html and "Chose UNDECIDABLE." in html  # rationales
    assert "Can&#x27;t decide" in html or "Can't decide" in html
    assert "A left, B right" in html or "B left, A right" in html  # order shown
    assert "helpfulness" in html and ' s <span class="muted">active' in html  # attributes and time spent
    assert "rm-1" in html and "0.223" in html  # P(A better) = sigmoid(0.25 - 1.5)
    assert 'id="tool-evidence"' in html
    assert 'id="resolve-panel"' in html


def test_resolving_from_the_review_page(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    dispute = curated["dispute"]
    url = reverse("curation:dispute-review", args=[project.pk, dispute.pk])
    lena = client_for(users["lena"])

    response = lena.post(url, {"decision": "B_CLEARLY", "note": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Write a short note" in response.content.decode()
    assert not DisputeResolution.objects.exists()

    response = lena.post(url, {"decision": "B_CLEARLY", "note": "B is right."}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="resolve-panel"')
    assert "the pair is verified" in html and "B is right." in html and "lena" in html
    assert VerifiedPair.objects.get(pair=dispute.pair).via == "lead"

    response = lena.post(url, {"decision": "DISCARD", "note": "On reflection, both wrong."})
    assert response.status_code == 302 and response["Location"] == url
    page = lena.get(url).content.decode()
    assert "B is right." in page and "On reflection, both wrong." in page  # the history keeps both
    assert not VerifiedPair.objects.filter(pair=dispute.pair).exists()


def test_resolution_in_a_flagged_batch_says_it_waits(
    project: Any, users: dict[str, Any], curated: dict[str, Any]
) -> None:
    url = reverse("curation:dispute-review", args=[project.pk, curated["flagged_dispute"].pk])
    html = (
        client_for(users["lena"])
        .post(url, {"decision": "A_CLEARLY", "note": "A"}, HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "once its batch passes" in html


def test_unknown_dispute_is_404(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    url = reverse("curation:dispute-review", args=[project.pk, 999_999])
    assert client_for(users["lena"]).get(url).status_code == 404


def test_settings_are_read_only_for_leads_and_editable_by_admins(project: Any, users: dict[str, Any]) -> None:
    url = reverse("curation:settings", args=[project.pk])
    data = {
        "alpha_threshold": "0.8",
        "gate_min_units": "10",
        "retest_rate": "0.1",
        "dispute_on_undecidable": "on",
        "split_rule": "any",
        "auto_discard_undecidable": "on",
    }
    lena = client_for(users["lena"])
    assert "disabled" in lena.get(url).content.decode()
    assert lena.post(url, data).status_code == 403
    adam = client_for(users["adam"])
    assert adam.post(url, {**data, "retest_rate": "2"}).status_code == 200  # invalid: form again
    response = adam.post(url, data)
    assert response.status_code == 302
    row = project.curation_settings
    row.refresh_from_db()
    assert (row.alpha_threshold, row.gate_min_units, row.retest_rate, row.split_rule) == (0.8, 10, 0.1, "any")
    assert row.dispute_on_high_controversiality is False and row.updated_by == users["adam"]
