"""Admin pages for reward models: training jobs (live progress), model versions, evaluations.

The reward-model app knows nothing of annotation roles: its pages are for staff users, which is
what the admin role grants.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django_htmx.middleware import HtmxDetails

from config import jobs
from config.formtools import add_service_errors
from rewardmodel.charts import curve_chart
from rewardmodel.forms import EvaluateForm, PromoteForm, TrainingJobForm
from rewardmodel.models import DatasetFile, EvaluationRun, ModelVersion, TrainingJob
from rewardmodel.presets import effective_bf16, where_it_runs
from rewardmodel.selectors import training_device_last_seen
from rewardmodel.server_forms import AttachServerForm
from rewardmodel.services import (
    dataset_file_register_upload,
    evaluation_create,
    model_version_promote,
    training_job_cancel,
    training_job_create,
    training_job_resume,
)
from rewardmodel.sources import source_resolve


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def staff_required(view: Any) -> Any:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_staff or request.user.is_superuser):
            raise PermissionDenied("reward-model pages are for admins")
        return view(request, *args, **kwargs)

    return wrapper


def _register_upload(upload: Any, user: Any) -> DatasetFile:
    return dataset_file_register_upload(upload=upload, created_by=user)


@staff_required
def model_index(request: HttpRequest) -> HttpResponse:
    jobs = TrainingJob.objects.select_related("train_data", "model_version")[:50]
    versions = ModelVersion.objects.all()[:100]
    datasets = DatasetFile.objects.all()[:50]
    return render(request, "rewardmodel/model_index.html", {"jobs": jobs, "versions": versions, "datasets": datasets})


@staff_required
def job_create(request: HttpRequest) -> HttpResponse:
    form = TrainingJobForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            data = form.cleaned_data
            # A curated source (a project's D_gold, a dataset version) resolves into registered files.
            source = source_resolve(data["source"], created_by=request.user) if data["source"] else None
            train = data["train_data"] or (
                source.train_data if source else _register_upload(data["train_upload"], request.user)
            )
            gold = data["eval_data"] or (
                _register_upload(data["eval_upload"], request.user)
                if data["eval_upload"]
                else (source.eval_data if source else None)
            )
            job = training_job_create(
                name=data["name"],
                scope=data["scope"] or (source.scope if source else ""),
                train_data=train,
                eval_data=gold,
                base_model=data["base_model"],
                config=form.config(),
                created_by=request.user,
                data_source=source.label if source else "",
                processes=data["processes"] or 1,  # blank: one process, as before
                accelerator=data["accelerator"] or TrainingJob.Accelerator.AUTO,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Training job {job.name} queued {where_it_runs(training_device_last_seen())}.")
            return redirect("rewardmodel:job-detail", job_id=job.pk)
    return render(request, "rewardmodel/job_form.html", {"form": form})


def _config_rows(job: TrainingJob) -> list[tuple[str, Any]]:
    """The job's settings for the page; bf16 as applied (False on CPU, where autocast is not used)."""
    rows = []
    for key, value in job.config.items():
        if value is None or key == "extra":
            continue
        if key == "bf16":
            applied = effective_bf16(job.config, job.device)
            if applied is not None:
                value = applied if applied == bool(value) else f"{applied} (requested {value}; CUDA only)"
        rows.append((key, value))
    rows.append(("processes", f"{job.processes} ({job.get_accelerator_display()})"))
    return rows


def _job_context(job: TrainingJob) -> dict[str, Any]:
    return {
        "job": job,
        "config_rows": _config_rows(job),
        "chart": curve_chart(job.curve, ["loss", "accuracy", "eval_accuracy"]),
        "log_tail": "\n".join(job.log.splitlines()[-40:]),
    }


@staff_required
def job_detail(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob.objects.select_related("train_data", "eval_data", "model_version"), pk=job_id)
    context = _job_context(job)
    if request.htmx:
        response = render(request, "rewardmodel/partials/job_status.html", context)
        return jobs.poll(request, response, finished=job.is_finished)
    return render(request, "rewardmodel/job_detail.html", context)


@staff_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob, pk=job_id)
    try:
        training_job_cancel(job=job)
        messages.info(request, "Cancel requested: the job stops at its next step and keeps a checkpoint.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("rewardmodel:job-detail", job_id=job_id)


@staff_required
@require_POST
def job_resume(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(TrainingJob, pk=job_id)
    try:
        training_job_resume(job=job)
        messages.success(request, "Requeued: training continues from the last checkpoint.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("rewardmodel:job-detail", job_id=job_id)


@staff_required
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion.objects.select_related("scoring_server"), pk=version_id)
    form = EvaluateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            data = form.cleaned_data["dataset"] or _register_upload(form.cleaned_data["upload"], request.user)
            run = evaluation_create(version=version, data=data, created_by=request.user)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return redirect("rewardmodel:evaluation-detail", run_id=run.pk)
    context = {
        "version": version,
        "form": form,
        "promote_form": PromoteForm(),
        "evaluations": version.evaluations.select_related("data")[:20],
        "job": TrainingJob.objects.filter(model_version=version).first(),
        "attach_form": AttachServerForm(initial={"server": version.scoring_server_id}),
    }
    return render(request, "rewardmodel/version_detail.html", context)


@staff_required
@require_POST
def version_promote(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=version_id)
    form = PromoteForm(request.POST)
    if form.is_valid():
        model_version_promote(version=version, role=form.cleaned_data["role"])
        messages.success(request, f"{version.name} is now {form.cleaned_data['role'].replace('_', ' ')}.")
    else:
        messages.error(request, "Choose gold or current best.")
    return redirect("rewardmodel:version-detail", version_id=version_id)


@staff_required
def evaluation_detail(request: HtmxHttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(EvaluationRun.objects.select_related("model_version", "data"), pk=run_id)
    per_subset = sorted((run.metrics.get("per_subset") or {}).items())
    context = {"run": run, "per_subset": per_subset}
    if request.htmx:
        response = render(request, "rewardmodel/partials/evaluation_status.html", context)
        finished = run.status in (EvaluationRun.Status.DONE, EvaluationRun.Status.FAILED)
        return jobs.poll(request, response, finished=finished)
    return render(request, "rewardmodel/evaluation_detail.html", context)
