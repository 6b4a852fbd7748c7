"""A project's curation settings: the gate's thresholds, the retest rate and the dispute rule.

Reads (:func:`curation_settings_peek`, :func:`dispute_rule`) and writes
(:func:`curation_settings_get_or_create`, :func:`curation_settings_update`). Changing the settings
re-requests every batch's gate (:mod:`curation.agreement_refresh`).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.models import Project
from curation.models import BatchGate, CurationSettings
from curation.rules import DisputeRule

SETTINGS_FIELDS = {
    "alpha_threshold",
    "gate_min_units",
    "retest_rate",
    "dispute_on_undecidable",
    "split_rule",
    "dispute_on_high_controversiality",
    "auto_discard_undecidable",
}


def curation_settings_peek(project: Project) -> CurationSettings:
    """The project's settings, or unsaved defaults when none were stored yet (no write)."""
    found = CurationSettings.objects.filter(project=project).first()
    return found if found is not None else CurationSettings(project=project)


def curation_settings_get_or_create(*, project: Project) -> CurationSettings:
    """The project's curation settings, created with the defaults on first use."""
    row, _ = CurationSettings.objects.get_or_create(project=project)
    return row


def dispute_rule(row: CurationSettings) -> DisputeRule:
    """The dispute rule a settings row describes (for :func:`curation.rules.pair_verdict`)."""
    return DisputeRule(
        on_undecidable=row.dispute_on_undecidable,
        split=row.split_rule,
        on_high_controversiality=row.dispute_on_high_controversiality,
        auto_discard_undecidable=row.auto_discard_undecidable,
    )


def curation_settings_update(*, project: Project, updated_by: Any = None, **fields: Any) -> CurationSettings:
    """Change a project's thresholds or dispute rule, then re-apply the gate to every batch.

    New rules apply to pairs not yet settled; existing disputes and verifications stay.
    """
    # agreement_refresh imports this module: importing it here, not at the top, avoids the cycle.
    from curation.agreement_refresh import agreement_request

    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise ValidationError(f"unknown curation settings: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        curation_settings_get_or_create(project=project)
        row = CurationSettings.objects.select_for_update().get(project=project)
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_by = updated_by
        row.full_clean()
        row.save()
    # After the settings lock is released: a request locks gate, then settings (one order everywhere).
    for key in BatchGate.objects.filter(project=project).values_list("batch_key", flat=True):
        agreement_request(project_id=project.pk, batch_key=key)
    return row
