"""The dispute queue and a dispute's review page, where a lead decides (then, optionally, goes
straight to the next open dispute). Access: :func:`curation.access.lead_view`, plus the per-pair
blindness rule (a lead who may still label the pair does not review it).

One view serves a page and its htmx fragment (``request.htmx`` renders only the partial).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import trigger_client_event

from annotation.models import Project
from annotation.selectors import pair_labels_visible_to
from annotation.services import ServiceError
from config.formtools import add_service_errors
from curation import disputes
from curation.access import HtmxHttpRequest, lead_view
from curation.dashboard import pair_counts
from curation.forms import DisputeFilterForm, ResolveForm
from curation.models import Dispute, DisputeResolution


def _get_dispute(project: Project, dispute_id: int) -> Dispute:
    dispute = disputes.dispute_get(project, dispute_id)
    if dispute is None:
        raise Http404("No such dispute.")
    return dispute


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
    rows = disputes.dispute_list(project, status=status, before=before, limit=disputes.DISPUTE_PAGE + 1)
    more = len(rows) > disputes.DISPUTE_PAGE
    rows = rows[: disputes.DISPUTE_PAGE]
    context = {
        "project": project,
        "disputes": rows,
        "status": status or "all",
        "statuses": [*Dispute.Status.choices, ("all", "All")],
        "next_before": rows[-1].pk if more and rows else None,
        "counts": pair_counts(project),
    }
    if request.htmx:
        return render(request, "curation/partials/dispute_rows.html", context)
    return render(request, "curation/dispute_list.html", context)


def _review_context(
    project: Project, dispute: Dispute, form: ResolveForm | None = None, **extra: Any
) -> dict[str, Any]:
    from curation.review import dispute_comment_list

    review = disputes.dispute_review(project, dispute)
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
            result = disputes.dispute_resolve(
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
