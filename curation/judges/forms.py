"""Forms of the judges pages. The API key is write-only: never rendered back, blank keeps the stored one."""

from __future__ import annotations

from typing import Any

from django import forms

from config.formtools import WriteOnlyKeyForm
from curation.judges.models import Judge


class JudgeForm(WriteOnlyKeyForm):
    base_url = forms.URLField(
        max_length=300, assume_scheme="http", help_text="Up to /v1, e.g. http://127.0.0.1:8011/v1."
    )

    class Meta:
        model = Judge
        fields = [
            "name",
            "base_url",
            "model",
            "api_key_env",
            "api_key_file",
            "response_format",
            "mode",
            "temperature",
            "samples",
            "concurrency",
            "rate_limit_per_minute",
            "max_examples",
            "max_tokens",
            "timeout_s",
            "enabled",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("samples") or 1) > 1 and not data.get("temperature"):
            self.add_error("temperature", "several samples need a temperature above 0, or every sample is the same")
        return data


class RunResumeForm(forms.Form):
    """Nothing to fill in; it exists so the POST is validated like every other."""
