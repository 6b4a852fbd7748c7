from __future__ import annotations

from django.apps import AppConfig


class RewardmodelConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rewardmodel"
    verbose_name = "Reward models"
