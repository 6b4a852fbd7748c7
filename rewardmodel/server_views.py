"""Scoring-server pages (admins only): list, add/edit, ping, delete, and attach a server to a model version.

Like the other reward-model pages they are for staff users (the admin role), checked server-side by
``staff_required``; the API key is write-only and never rendered.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from config.formtools import add_service_errors
from rewardmodel.models import ModelVersion, ScoringServer
from rewardmodel.server_forms import AttachServerForm, ScoringServerForm
from rewardmodel.servers import (
    model_version_attach_server,
    scoring_server_delete,
    scoring_server_ping,
    scoring_server_save,
)
from rewardmodel.views import staff_required


@staff_required
def server_list(request: HttpRequest) -> HttpResponse:
    servers = ScoringServer.objects.prefetch_related("model_versions")
    return render(request, "rewardmodel/server_list.html", {"servers": servers})


@staff_required
def server_edit(request: HttpRequest, server_id: int | None = None) -> HttpResponse:
    server = get_object_or_404(ScoringServer, pk=server_id) if server_id else ScoringServer()
    form = ScoringServerForm(request.POST or None, instance=server)
    if request.method == "POST" and form.is_valid():
        try:
            scoring_server_save(
                server=form.instance,
                api_key=form.cleaned_data["new_api_key"],
                clear_key=form.cleaned_data["clear_key"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Scoring server {form.instance.name} saved.")
            return redirect("rewardmodel:server-list")
    return render(request, "rewardmodel/server_form.html", {"form": form, "server": server})


@staff_required
@require_POST
def server_ping(request: HttpRequest, server_id: int) -> HttpResponse:
    server = get_object_or_404(ScoringServer, pk=server_id)
    check = scoring_server_ping(server=server)
    return render(request, "rewardmodel/partials/server_ping.html", {"check": check, "server": server})


@staff_required
@require_POST
def server_delete(request: HttpRequest, server_id: int) -> HttpResponse:
    server = get_object_or_404(ScoringServer, pk=server_id)
    name = server.name
    scoring_server_delete(server=server)
    messages.info(request, f"Scoring server {name} deleted; its model versions score in-process again.")
    return redirect("rewardmodel:server-list")


@staff_required
@require_POST
def version_attach_server(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = AttachServerForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a scoring server from the list.")
    else:
        server = form.cleaned_data["server"]
        model_version_attach_server(version=version, server=server)
        if server is None:
            messages.success(request, f"{version.name} is scored in-process again.")
        else:
            messages.success(request, f"{version.name} is scored on {server.name} from now on.")
    return redirect("rewardmodel:version-detail", version_id=version_id)
