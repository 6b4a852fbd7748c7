"""Reads of the reward-model registry."""

from __future__ import annotations

from rewardmodel.models import ModelVersion


def model_version_get_current_best(scope: str) -> ModelVersion | None:
    """The current-best model of a scope (e.g. ``project:3``), or None."""
    return ModelVersion.objects.filter(scope=scope, is_current_best=True).first()


def model_version_get_gold(scope: str) -> ModelVersion | None:
    """The gold model of a scope (trained on human-verified data only), or None."""
    return ModelVersion.objects.filter(scope=scope, is_gold=True).first()


def training_device_last_seen() -> str | None:
    """The device of the most recently started training job (``cuda:0``, ``cpu``): what the training
    worker trains on, as far as the web process can know without importing torch. None before any job ran."""
    from rewardmodel.models import TrainingJob

    return (
        TrainingJob.objects.exclude(device="").order_by("-started_at", "-pk").values_list("device", flat=True).first()
    )
