"""Form helpers shared by the apps (no app imports here)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def add_service_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: on its field when the form has one, else on top."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            for error in errors:
                for message in error.messages:
                    if field in form.fields:
                        form.add_error(field, message)
                    elif field == NON_FIELD_ERRORS:
                        form.add_error(None, message)
                    else:
                        form.add_error(None, f"{field.replace('_', ' ')}: {message}")
    else:
        for message in exc.messages:
            form.add_error(None, message)


class WriteOnlyKeyForm(forms.ModelForm):
    """A model form for a row with a write-only API key (``api_key``): the key is never rendered back; a blank
    ``new_api_key`` keeps the stored one and ``clear_key`` removes it. ``key_status`` says whether one is stored."""

    new_api_key = forms.CharField(
        required=False,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave blank to keep the stored key. Prefer an environment variable or a key file.",
    )
    clear_key = forms.BooleanField(required=False, label="Remove the stored key")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_status = "a key is stored" if self.instance.pk and self.instance.api_key else "no key stored"
