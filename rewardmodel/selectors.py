"""Reads of the reward-model registry."""

from __future__ import annotations

from rewardmodel.models import ModelVersion


def model_version_get_current_best(scope: str) -> ModelVersion | None:
    """The current-best model of a scope (e.g. ``project:3``), or None."""
    return ModelVersion.objects.filter(scope=scope, is_current_best=True).first()


def model_version_get_gold(scope: str) -> ModelVersion | None:
    """The gold model of a scope (trained on human-verified data only), or None."""
    return ModelVersion.objects.filter(scope=scope, is_gold=True).first()
