from __future__ import annotations

from django.apps import AppConfig


class JudgesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "curation.judges"
    label = "judges"
    verbose_name = "LLM judges"
