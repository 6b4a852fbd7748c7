"""Forms of the scoring-server pages. The API key is write-only: never rendered back, blank keeps the stored one."""

from __future__ import annotations

from typing import Any

from django import forms

from rewardmodel.models import ScoringServer


class ScoringServerForm(forms.ModelForm):
    new_api_key = forms.CharField(
        required=False,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave blank to keep the stored key. Prefer an environment variable or a key file.",
    )
    clear_key = forms.BooleanField(required=False, label="Remove the stored key")

    class Meta:
        model = ScoringServer
        fields = [
            "name",
            "kind",
            "base_urls",
            "served_model",
            "api_key_env",
            "api_key_file",
            "batch_size",
            "concurrency",
            "timeout_s",
            "max_retries",
            "check_saturation",
        ]
        widgets = {"base_urls": forms.Textarea(attrs={"rows": 4, "placeholder": "http://gpu0:8000\nhttp://gpu1:8000"})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_status = "a key is stored" if self.instance.pk and self.instance.api_key else "no key stored"


class AttachServerForm(forms.Form):
    server = forms.ModelChoiceField(
        queryset=ScoringServer.objects.all(),
        required=False,
        empty_label="None: score in-process on the gpu worker",
        label="Scoring server",
    )
