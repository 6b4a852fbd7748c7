"""A project's curation settings page: thresholds, retest rate and dispute rule (admins edit;
leads see it read-only). Access: :func:`curation.access.lead_view`.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation.models import Project
from annotation.roles import is_admin
from config.formtools import add_service_errors
from curation.access import HtmxHttpRequest, lead_view
from curation.forms import CurationSettingsForm
from curation.project_settings import curation_settings_peek, curation_settings_update


@lead_view
@require_http_methods(["GET", "POST"])
def settings_edit(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """The project's thresholds and dispute rule (admins edit; leads see it read-only)."""
    current = curation_settings_peek(project)
    can_edit = is_admin(request.user)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("Only admins can change the curation settings.")
        form = CurationSettingsForm(request.POST, instance=current)
        if form.is_valid():
            try:
                curation_settings_update(
                    project=project,
                    updated_by=request.user,
                    **{name: form.cleaned_data[name] for name in CurationSettingsForm.Meta.fields},
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Curation settings saved; every batch's gate is being re-checked.")
                return redirect("curation:dashboard", project_id=project.pk)
    else:
        form = CurationSettingsForm(instance=current)
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "curation/settings_form.html", {"project": project, "form": form, "can_edit": can_edit})
