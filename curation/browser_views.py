"""Lead pages over all of a project's data: the pair browser, one pair, one annotator; dispute threads.

Access as in :mod:`curation.access`: non-members get 404, annotators 403 on lead pages. The dispute
thread is also open to annotators who have submitted a label on the pair (``curation.review``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from annotation.models import Project
from annotation.roles import is_lead
from annotation.selectors import pair_labels_visible_to, project_get_for_user
from config.formtools import add_service_errors
from curation.access import HtmxHttpRequest, lead_view
from curation.browser import (
    annotator_labels_page,
    annotator_profile,
    browse_export_records,
    pair_browse_page,
    pair_get,
    pair_inspect,
)
from curation.browser_forms import BrowseExportForm, CommentForm, LabelPageForm, PairFilterForm
from curation.judges.selectors import judge_verdict_for
from curation.models import Dispute
from curation.review import (
    dispute_comment_add,
    dispute_comment_list,
    dispute_list_for_annotator,
    dispute_thread_allowed,
)


def _filter_form(request: HtmxHttpRequest, project: Project) -> PairFilterForm:
    return PairFilterForm(request.GET, project=project)


@lead_view
@vary_on_headers("HX-Request")
@require_GET
def pair_browser(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """Every pair of the project, filtered, keyset-paged (``after``: the last id of the previous page)."""
    form = _filter_form(request, project)
    page = None
    if form.is_valid():
        page = pair_browse_page(project, form.filters(), user=request.user, after=form.cleaned_data.get("after"))
    context = {
        "project": project,
        "form": form,
        "page": page,
        "next_query": form.query_string(after=page.next_after) if page and page.next_after else "",
        "export_query": form.query_string() if form.is_valid() else "",
        "first_page": not (form.is_valid() and form.cleaned_data.get("after")),
    }
    status = 200 if form.is_valid() else 400
    if request.htmx:
        template = "curation/partials/pair_results.html"
        if not context["first_page"]:
            template = "curation/partials/pair_rows.html"  # "more" appends rows to the table
        return render(request, template, context, status=200 if request.htmx else status)
    return render(request, "curation/pair_browser.html", context, status=status)


@lead_view
@require_GET
def pair_browser_export(request: HtmxHttpRequest, project: Project) -> HttpResponseBase:
    """The filtered set as JSON Lines, every line from the one record builder, with every label."""
    form = _filter_form(request, project)
    export = BrowseExportForm(request.GET)
    if not form.is_valid() or not export.is_valid():
        errors = {**form.errors, **export.errors}
        body = json.dumps({"errors": {k: [str(m) for m in v] for k, v in errors.items()}})
        return HttpResponse(body, status=400, content_type="application/json")
    fmt = export.cleaned_data["format"] or "conversational"
    records = browse_export_records(project, form.filters(), user=request.user, fmt=fmt)
    response = StreamingHttpResponse(
        (json.dumps(r, ensure_ascii=False) + "\n" for r in records), content_type="application/x-ndjson"
    )
    stem = slugify(project.name) or f"project-{project.pk}"
    response["Content-Disposition"] = f'attachment; filename="{stem}-browser.jsonl"'
    return response


@lead_view
@require_GET
def pair_detail(request: HtmxHttpRequest, project: Project, pair_id: int) -> HttpResponse:
    """One pair: its text always; its labels, verdict, model score and evidence only when not blind."""
    pair = pair_get(project, pair_id)
    if pair is None:
        raise Http404("No such pair.")
    visible = pair_labels_visible_to(request.user, pair)
    context: dict[str, Any] = {"project": project, "pair": pair, "visible": visible}
    if visible:
        inspection = pair_inspect(project, pair)
        context["inspection"] = inspection
        context["judge_verdict"] = judge_verdict_for(pair)
        if inspection.dispute is not None:
            context["comments"] = list(dispute_comment_list(inspection.dispute))
            context["comment_form"] = CommentForm()
            context["dispute"] = inspection.dispute
    return render(request, "curation/pair_detail.html", context)


@lead_view
@require_GET
def annotator_detail(request: HtmxHttpRequest, project: Project, user_id: int) -> HttpResponse:
    """One annotator: labels, time per label, agreement with others and with verdicts, retests."""
    annotator = get_user_model().objects.filter(pk=user_id).first()
    if annotator is None or not (
        project.members.filter(pk=user_id).exists() or annotator.annotations.filter(pair__project=project).exists()
    ):
        raise Http404("No such annotator in this project.")
    paging = LabelPageForm(request.GET)
    before = paging.cleaned_data.get("before") if paging.is_valid() else None
    labels, next_before = annotator_labels_page(project, annotator, viewer=request.user, before=before)
    context = {
        "project": project,
        "profile": annotator_profile(project, annotator),
        "labels": labels,
        "next_before": next_before,
        "paging_error": paging.errors.get("before"),
    }
    return render(request, "curation/annotator_detail.html", context, status=200 if paging.is_valid() else 400)


# --- dispute threads (leads and annotators who have submitted) -------------------------------------


def _project_for_member(user: Any, project_id: int) -> Project:
    project = project_get_for_user(user, project_id)
    if project is None:
        raise Http404("No such project.")
    return project


def _thread_context(dispute: Dispute, form: CommentForm | None = None) -> dict[str, Any]:
    return {
        "dispute": dispute,
        "project": dispute.project,
        "comments": list(dispute_comment_list(dispute)),
        "comment_form": form or CommentForm(),
    }


@login_required
@require_POST
def dispute_comment(request: HtmxHttpRequest, project_id: int, dispute_id: int) -> HttpResponse:
    """Add a comment to a dispute's thread; htmx gets the thread back, others a redirect."""
    project = _project_for_member(request.user, project_id)
    dispute = Dispute.objects.filter(project=project, pk=dispute_id).select_related("pair", "project").first()
    if dispute is None:
        raise Http404("No such dispute.")
    if not dispute_thread_allowed(request.user, dispute):
        raise PermissionDenied("You can read this thread once you have submitted your label on the pair.")
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            dispute_comment_add(dispute_id=dispute.pk, author=request.user, body=form.cleaned_data["body"])
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            form = CommentForm()
            if not request.htmx:
                if is_lead(request.user) and pair_labels_visible_to(request.user, dispute.pair):
                    return redirect("curation:dispute-review", project_id=project.pk, dispute_id=dispute.pk)
                return redirect("curation:my-disputes", project_id=project.pk)
    status = 422 if form.errors else 200
    return render(request, "curation/partials/dispute_thread.html", _thread_context(dispute, form), status=status)


@login_required
@require_GET
def my_disputes(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """For annotators: disputes on pairs they have labelled, each with its thread."""
    project = _project_for_member(request.user, project_id)
    disputes = dispute_list_for_annotator(project, request.user)
    threads = [_thread_context(d) for d in disputes]
    return render(request, "curation/my_disputes.html", {"project": project, "threads": threads})
