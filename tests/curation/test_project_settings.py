"""A project's curation settings: created lazily with the defaults, validated on update."""

from __future__ import annotations

from typing import Any

import pytest

from curation.models import CurationSettings
from curation.project_settings import curation_settings_get_or_create, curation_settings_update


def test_settings_are_created_lazily_with_defaults(project: Any, settings: Any) -> None:
    settings.CURATION_RETEST_RATE = 0.05  # the shipped default (the curation conftest zeroes it)
    assert not CurationSettings.objects.filter(project=project).exists()
    row = curation_settings_get_or_create(project=project)
    assert (row.alpha_threshold, row.retest_rate, row.split_rule, row.dispute_on_undecidable) == (
        0.85,
        0.05,
        "strength",
        True,
    )


def test_settings_update_validates(project: Any) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        curation_settings_update(project=project, retest_rate=1.5)
    with pytest.raises(ValidationError):
        curation_settings_update(project=project, colour="red")
    row = curation_settings_update(project=project, alpha_threshold=0.7, split_rule="any")
    assert (row.alpha_threshold, row.split_rule) == (0.7, "any")
