"""Forms of the judges pages. The API key is write-only: never rendered back, blank keeps the stored one."""

from __future__ import annotations

from typing import Any

from django import forms

from curation.judges.models import Judge


class JudgeForm(forms.ModelForm):
    base_url = forms.URLField(
        max_length=300, assume_scheme="http", help_text="Up to /v1, e.g. http://127.0.0.1:8011/v1."
    )
    new_api_key = forms.CharField(
        required=False,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave blank to keep the stored key. Prefer an environment variable or a key file.",
    )
    clear_key = forms.BooleanField(required=False, label="Remove the stored key")

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        instance = self.instance
        self.key_status = "a key is stored" if instance.pk and instance.api_key else "no key stored"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("samples") or 1) > 1 and not data.get("temperature"):
            self.add_error("temperature", "several samples need a temperature above 0, or every sample is the same")
        return data


class RunResumeForm(forms.Form):
    """Nothing to fill in; it exists so the POST is validated like every other."""
