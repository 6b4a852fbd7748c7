"""Forms of the curation pages. They validate input; writes happen in the services of each noun
(:mod:`curation.gate`, :mod:`curation.disputes`, :mod:`curation.project_settings`, ...)."""

from __future__ import annotations

from typing import Any

from django import forms

from curation.export import SELECTIONS
from curation.models import CurationSettings, Dispute, DisputeResolution
from rewardmodel.services import base_model_choices

STATUS_ALL = "all"


class DisputeFilterForm(forms.Form):
    """The dispute queue's GET parameters."""

    status = forms.ChoiceField(
        choices=[*Dispute.Status.choices, (STATUS_ALL, "All")], required=False, initial=Dispute.Status.OPEN
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def status_filter(self) -> str:
        """The status to filter on ("" for all); open when not given."""
        status = self.cleaned_data.get("status") or Dispute.Status.OPEN
        return "" if status == STATUS_ALL else status


class ResolveForm(forms.Form):
    decision = forms.ChoiceField(
        choices=DisputeResolution.Decision.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose the final label, or discard the pair."},
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        error_messages={"required": "Write a short note: why this label (or why discard)?"},
    )


class BatchAcceptForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=5000,
        error_messages={"required": "Say why this batch can be trusted despite its alpha."},
    )


class CurationSettingsForm(forms.ModelForm):
    class Meta:
        model = CurationSettings
        fields = [
            "alpha_threshold",
            "gate_min_units",
            "retest_rate",
            "dispute_on_undecidable",
            "split_rule",
            "dispute_on_high_controversiality",
            "auto_discard_undecidable",
        ]
        widgets = {"split_rule": forms.RadioSelect}


class ExportForm(forms.Form):
    """The export page's GET parameters (the same options as the command and the API)."""

    format = forms.ChoiceField(
        choices=[
            ("conversational", "Conversational (prompt as a message list; TRL chat-template format)"),
            ("standard", "Standard (prompt as an hh-rlhf transcript string)"),
            ("messages", "Messages (prompt as a message list, responses as strings; the reward-model app's format)"),
        ],
        initial="conversational",
        widget=forms.RadioSelect,
    )
    selection = forms.ChoiceField(choices=(), initial="verified", widget=forms.RadioSelect)
    labels = forms.BooleanField(required=False, label="Every annotator's label (always on for disputed/discarded)")
    evidence = forms.BooleanField(required=False, label="Tool evidence (searches, code runs, AI questions)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["selection"].choices = list(SELECTIONS.items())  # type: ignore[attr-defined]

    def options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`curation.export.export_lines`."""
        d = self.cleaned_data
        return {
            "fmt": d["format"],
            "selection": d["selection"] or "verified",
            "include_labels": True if d["labels"] else None,
            "include_evidence": d["evidence"],
        }


class DatasetTrainForm(forms.Form):
    """Train a reward model on a dataset version (a few settings; the Models page has them all)."""

    base_model = forms.ChoiceField(choices=())
    num_epochs = forms.IntegerField(min_value=1, initial=1)
    max_steps = forms.IntegerField(min_value=0, initial=0, help_text="> 0 caps training steps.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = base_model_choices()  # type: ignore[attr-defined]
