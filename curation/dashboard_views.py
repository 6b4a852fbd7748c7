"""The Quality page (lead dashboard): agreement per dimension, per batch and per annotator, and a
lead accepting a flagged batch. Access: :func:`curation.access.lead_view`.

One view serves a page and its htmx fragment (``request.htmx`` renders only the partial).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from annotation.models import Project
from annotation.proposals import proposal_acceptance, proposal_counts
from annotation.services import ServiceError
from curation.access import HtmxHttpRequest, lead_view
from curation.dashboard import dashboard as dashboard_get
from curation.forms import BatchAcceptForm
from curation.gate import batch_gate_accept
from curation.models import BatchGate


@lead_view
@vary_on_headers("HX-Request")
@require_GET
def dashboard(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """Agreement per dimension, per batch (flagged badge) and per annotator, with charts over time."""
    context = {
        "project": project,
        "board": dashboard_get(project),
        "accept_form": BatchAcceptForm(),
        # LLM attribute proposals (issue 12): how often annotators kept each proposed attribute.
        "proposal_rates": proposal_acceptance(project),
        "proposal_counts": proposal_counts(project),
    }
    if request.htmx:
        return render(request, "curation/partials/dashboard_body.html", context)
    return render(request, "curation/project_dashboard.html", context)


@lead_view
@require_POST
def batch_accept(request: HtmxHttpRequest, project: Project, gate_id: int) -> HttpResponse:
    """A lead lets a flagged batch through despite its low alpha, with a note."""
    gate = BatchGate.objects.filter(project=project, pk=gate_id).first()
    if gate is None:
        raise Http404("No such batch.")
    form = BatchAcceptForm(request.POST)
    error = ""
    if not form.is_valid():
        error = " ".join(str(m) for errors in form.errors.values() for m in errors)
    else:
        try:
            batch_gate_accept(gate_id=gate.pk, lead=request.user, note=form.cleaned_data["note"])
        except ValidationError as exc:
            error = " ".join(str(m) for m in exc.messages)
        except ServiceError as exc:
            error = str(exc)
    if request.htmx:
        context = {"project": project, "board": dashboard_get(project), "accept_form": BatchAcceptForm()}
        context["accept_error"] = error
        context["accept_error_gate"] = gate.pk
        response = render(request, "curation/partials/dashboard_body.html", context)
        return trigger_client_event(response, "batchAccepted", {"gate": gate.pk}) if not error else response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Batch {gate.batch_key} accepted; its waiting pairs are verified.")
    return redirect("curation:dashboard", project_id=project.pk)
