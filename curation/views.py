"""Lead pages: agreement dashboard, dispute queue, dispute review, curation settings.

Access: a login is required; the project must be visible to the user (members and admins),
anyone else gets 404 so a project's existence does not leak; within the project only leads and
admins may look (annotators get 403). Settings are edited by admins only.

One view serves a page and its htmx fragment (``request.htmx`` renders only the partial).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event
from django_htmx.middleware import HtmxDetails

from annotation.models import Project
from annotation.roles import is_admin, is_lead
from annotation.selectors import pair_labels_visible_to, project_get_for_user
from annotation.services import ServiceError
from config.formtools import add_service_errors
from curation import selectors
from curation.forms import BatchAcceptForm, CurationSettingsForm, DisputeFilterForm, ResolveForm
from curation.models import BatchGate, Dispute, DisputeResolution
from curation.services import batch_gate_accept, curation_settings_update, dispute_resolve

View = Callable[..., HttpResponseBase]


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


# --- access helpers ------------------------------------------------------------------------------


def _get_project_for_lead(user: Any, project_id: int) -> Project:
    """The project for a lead or admin who can see it; 404 for non-members, 403 for annotators."""
    project = project_get_for_user(user, project_id)
    if project is None:
        raise Http404("No such project.")
    if not is_lead(user):
        raise PermissionDenied("Only leads and admins can review.")
    return project


def _get_dispute(project: Project, dispute_id: int) -> Dispute:
    dispute = selectors.dispute_get(project, dispute_id)
    if dispute is None:
        raise Http404("No such dispute.")
    return dispute


def lead_view(view: View) -> View:
    """Login required; resolves ``project_id`` to a Project the user may review."""

    @functools.wraps(view)
    def wrapper(request: HtmxHttpRequest, project_id: int, *args: Any, **kwargs: Any) -> HttpResponseBase:
        project = _get_project_for_lead(request.user, project_id)
        return view(request, project, *args, **kwargs)

    return login_required(wrapper)


# --- dashboard -----------------------------------------------------------------------------------


@lead_view
@vary_on_headers("HX-Request")
@require_GET
def dashboard(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """Agreement per dimension, per batch (flagged badge) and per annotator, with charts over time."""
    context = {"project": project, "board": selectors.dashboard(project), "accept_form": BatchAcceptForm()}
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
        context = {"project": project, "board": selectors.dashboard(project), "accept_form": BatchAcceptForm()}
        context["accept_error"] = error
        context["accept_error_gate"] = gate.pk
        response = render(request, "curation/partials/dashboard_body.html", context)
        return trigger_client_event(response, "batchAccepted", {"gate": gate.pk}) if not error else response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Batch {gate.batch_key} accepted; its waiting pairs are verified.")
    return redirect("curation:dashboard", project_id=project.pk)


# --- disputes ------------------------------------------------------------------------------------


@lead_view
@vary_on_headers("HX-Request")
@require_GET
def dispute_list(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """The dispute queue, filtered by status (open by default), newest first, keyset-paged."""
    form = DisputeFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        form = DisputeFilterForm()
        form.is_valid()
    status = form.status_filter() if form.is_bound else Dispute.Status.OPEN
    before = form.cleaned_data.get("before") if form.is_bound else None
    disputes = selectors.dispute_list(project, status=status, before=before, limit=selectors.DISPUTE_PAGE + 1)
    more = len(disputes) > selectors.DISPUTE_PAGE
    disputes = disputes[: selectors.DISPUTE_PAGE]
    context = {
        "project": project,
        "disputes": disputes,
        "status": status or "all",
        "statuses": [*Dispute.Status.choices, ("all", "All")],
        "next_before": disputes[-1].pk if more and disputes else None,
        "counts": selectors.pair_counts(project),
    }
    if request.htmx:
        return render(request, "curation/partials/dispute_rows.html", context)
    return render(request, "curation/dispute_list.html", context)


def _review_context(
    project: Project, dispute: Dispute, form: ResolveForm | None = None, **extra: Any
) -> dict[str, Any]:
    from curation.review import dispute_comment_list

    review = selectors.dispute_review(project, dispute)
    return {
        "project": project,
        "dispute": dispute,
        "review": review,
        "pair": review.pair,
        "form": form or ResolveForm(),
        "decisions": DisputeResolution.Decision.choices,
        "comments": list(dispute_comment_list(dispute)),
        **extra,
    }


@lead_view
@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def dispute_review(request: HtmxHttpRequest, project: Project, dispute_id: int) -> HttpResponse:
    """The review page (GET) and the resolve action (POST; htmx gets the updated resolve panel)."""
    dispute = _get_dispute(project, dispute_id)
    if not pair_labels_visible_to(request.user, dispute.pair):
        # Blindness per pair: a lead who also annotates never reviews a pair they hold or may still label.
        raise PermissionDenied("You hold or may still label this pair, so its labels are hidden from you.")
    if request.method == "GET":
        return render(request, "curation/dispute_review.html", _review_context(project, dispute))
    form = ResolveForm(request.POST)
    notice = ""
    if form.is_valid():
        try:
            result = dispute_resolve(
                dispute_id=dispute.pk,
                lead=request.user,
                decision=form.cleaned_data["decision"],
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            if result.resolution.is_discard:
                notice = "Pair discarded."
            elif result.waiting_for_gate:
                # The panel itself says what the pair waits for; the notice does not repeat it.
                notice = "Resolved."
            else:
                notice = "Resolved; the pair is verified."
            if request.POST.get("next"):
                return _to_next_dispute(request, project, dispute, notice)
            if not request.htmx:
                messages.success(request, notice)
                return redirect("curation:dispute-review", project_id=project.pk, dispute_id=dispute.pk)
            form = ResolveForm()
    dispute.refresh_from_db()
    context = _review_context(project, dispute, form, notice=notice)
    status = 200 if not form.errors else 422
    if request.htmx:
        response = render(request, "curation/partials/resolve_panel.html", context, status=200)
        return trigger_client_event(response, "disputeResolved", {"dispute": dispute.pk}) if notice else response
    return render(request, "curation/dispute_review.html", context, status=status)


def _to_next_dispute(request: HtmxHttpRequest, project: Project, done: Dispute, notice: str) -> HttpResponse:
    """After a decision, straight to the next open dispute this lead may review (or the queue when none is left)."""
    from django.urls import reverse
    from django_htmx.http import HttpResponseClientRedirect

    from curation.review import dispute_next_open

    following = dispute_next_open(project, request.user, exclude_id=done.pk)
    if following is None:
        messages.success(request, f"Pair #{done.pair_id}: {notice} No open disputes are left.")
        url = reverse("curation:dispute-list", args=[project.pk])
    else:
        messages.success(request, f"Pair #{done.pair_id}: {notice} Here is the next dispute.")
        url = reverse("curation:dispute-review", args=[project.pk, following.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# --- settings ------------------------------------------------------------------------------------


@lead_view
@require_http_methods(["GET", "POST"])
def settings_edit(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """The project's thresholds and dispute rule (admins edit; leads see it read-only)."""
    current = selectors.curation_settings_peek(project)
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
