"""Export and dataset-version pages (leads and admins; admins freeze D_gold and train).

The export page keeps the address users know (``/projects/<id>/export/`` redirects here).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Project
from annotation.roles import is_admin
from curation.access import HtmxHttpRequest, lead_view
from curation.dashboard import pair_counts
from curation.datasets import KINDS, dataset_version_freeze_gold, dataset_version_get, dataset_version_list
from curation.export import SELECTIONS, export_lines
from curation.forms import DatasetTrainForm, ExportForm
from curation.training import dataset_version_train
from rewardmodel.models import TrainingJob


def _require_admin(user: Any) -> None:
    if not is_admin(user):
        raise PermissionDenied("Only admins freeze datasets and train models.")


@lead_view
@require_GET
def project_export(request: HtmxHttpRequest, project: Project) -> HttpResponseBase:
    """The export page; with ``?format=...`` it streams the JSON Lines download."""
    if "format" in request.GET:
        form = ExportForm(request.GET)
        if form.is_valid():
            options = form.options()
            response = StreamingHttpResponse(export_lines(project, **options), content_type="application/x-ndjson")
            stem = slugify(project.name) or f"project-{project.pk}"
            suffix = "" if options["selection"] == "verified" else f"-{options['selection']}"
            response["Content-Disposition"] = f'attachment; filename="{stem}{suffix}.jsonl"'
            return response
    else:
        form = ExportForm()
    context = {"project": project, "form": form, "counts": pair_counts(project), "selections": SELECTIONS}
    return render(request, "curation/export.html", context)


class VersionFilterForm(forms.Form):
    kind = forms.ChoiceField(choices=[("", "All"), *KINDS.items()], required=False)


def _jobs_by_version(project: Project) -> dict[int, list[TrainingJob]]:
    jobs: dict[int, list[TrainingJob]] = {}
    rows = TrainingJob.objects.filter(scope=f"project:{project.pk}", data_source__startswith="dataset-version:")
    for job in rows.select_related("model_version").order_by("-created_at")[:500]:
        head = job.data_source.split(" ", 1)[0].removeprefix("dataset-version:")
        if head.isdigit():
            jobs.setdefault(int(head), []).append(job)
    return jobs


@lead_view
@require_GET
def dataset_versions(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """Every frozen dataset version of the project: counts, filters, provenance, downloads, jobs trained on it."""
    filters = VersionFilterForm(request.GET)
    kind = filters.cleaned_data["kind"] if filters.is_valid() else ""
    versions = list(dataset_version_list(project, kind=kind or None)[:200])
    jobs = _jobs_by_version(project)
    rows = [{"version": v, "jobs": jobs.get(v.pk, [])} for v in versions]
    context = {
        "project": project,
        "rows": rows,
        "filters": filters,
        "can_train": is_admin(request.user),
        "train_form": DatasetTrainForm(auto_id=False),
        "counts": pair_counts(project),
    }
    return render(request, "curation/dataset_versions.html", context)


@lead_view
@require_POST
def dataset_version_freeze_gold_view(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    _require_admin(request.user)
    try:
        version = dataset_version_freeze_gold(project=project, created_by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Froze {version.name}: {version.train_data.n_records} pairs to train on.")
    return redirect("curation:dataset-list", project_id=project.pk)


@lead_view
@require_POST
def dataset_version_train_view(request: HtmxHttpRequest, project: Project, version_id: int) -> HttpResponse:
    """Queue a reward-model training job on one dataset version (no file upload)."""
    _require_admin(request.user)
    version = dataset_version_get(project, version_id)
    if version is None:
        raise Http404("No such dataset version.")
    form = DatasetTrainForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(str(m) for m in e)}" for name, e in form.errors.items())
        messages.error(request, f"Not queued: {errors}")
        return redirect("curation:dataset-list", project_id=project.pk)
    d = form.cleaned_data
    try:
        job = dataset_version_train(
            version=version,
            base_model=d["base_model"],
            config={"num_epochs": d["num_epochs"], "max_steps": d["max_steps"]},
            created_by=request.user,
        )
    except ValidationError as exc:
        messages.error(request, "Not queued: " + " ".join(exc.messages))
        return redirect("curation:dataset-list", project_id=project.pk)
    messages.success(request, f"Training job {job.name} queued on {version.name}.")
    return redirect("rewardmodel:job-detail", job_id=job.pk)
