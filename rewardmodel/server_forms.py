"""Forms of the scoring-server pages. The API key is write-only: never rendered back, blank keeps the stored one."""

from __future__ import annotations

from django import forms

from config.formtools import WriteOnlyKeyForm
from rewardmodel.models import ScoringServer


class ScoringServerForm(WriteOnlyKeyForm):
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


class AttachServerForm(forms.Form):
    server = forms.ModelChoiceField(
        queryset=ScoringServer.objects.all(),
        required=False,
        empty_label="None: score in-process on the gpu worker",
        label="Scoring server",
    )
