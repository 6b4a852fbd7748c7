"""The dispute queue and the review page: filters, what a lead sees, and resolving from the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from curation.models import DisputeResolution, PairScore, VerifiedPair
from tests.curation.helpers import client_for

pytestmark = pytest.mark.usefixtures("curation_urls")


def test_dispute_queue_filters_by_status(project: Any, users: dict[str, Any], curated: dict[str, Any]) -> None:
    from curation.disputes import dispute_resolve

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
