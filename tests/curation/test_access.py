"""Who may open the lead pages (curation.access.lead_view): leads and admins of the project; a
lead outside it gets 404, an annotator 403, on pages and actions alike.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from curation.models import DisputeResolution
from tests.curation.helpers import client_for

pytestmark = pytest.mark.usefixtures("curation_urls")


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
