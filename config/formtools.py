"""Form helpers shared by the apps (no app imports here)."""

from __future__ import annotations

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
