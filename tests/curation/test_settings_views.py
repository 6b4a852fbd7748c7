"""The curation settings page: read-only for leads, editable (and validated) for admins."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from tests.curation.helpers import client_for

pytestmark = pytest.mark.usefixtures("curation_urls")


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
