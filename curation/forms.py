"""Forms of the curation pages. They validate input; writes happen in :mod:`curation.services`."""

from __future__ import annotations

from django import forms

from curation.models import CurationSettings, Dispute, DisputeResolution

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
