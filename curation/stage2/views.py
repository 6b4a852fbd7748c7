"""Stage-2 pages: start a run (admins), watch it (leads), pause / resume / cancel / retrain (admins)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.models import Project
from annotation.roles import is_admin
from config import jobs
from curation.access import HtmxHttpRequest, lead_view
from curation.stage2 import engine
from curation.stage2.estimate import LEDGER_PAIRS_PER_S, PAPER_POOL, stage2_estimates
from curation.stage2.models import Stage2Result, Stage2Run
from rewardmodel.selectors import model_version_get_current_best, model_version_get_gold

ACTIONS = {
    "pause": engine.stage2_run_pause,
    "resume": engine.stage2_run_resume,
    "cancel": engine.stage2_run_cancel,
}


class Stage2Form(forms.Form):
    policy = forms.ChoiceField(
        choices=[
            ("paper", "Paper: flip every pair not kept"),
            ("strict", "Strict: flip only where both RMs say reversed"),
        ]
    )
    band = forms.FloatField(
        min_value=0.0,
        max_value=0.49,
        initial=0.0,
        help_text="Pairs with p_best within this of 0.5 also go to the judges.",
    )
    flip_margin = forms.FloatField(
        min_value=0.0, max_value=0.49, initial=0.0, help_text="Strict policy: both p below 0.5 − margin to flip."
    )
    shard_size = forms.IntegerField(min_value=100, max_value=1_000_000, initial=10_000)
    max_length = forms.IntegerField(
        required=False,  # empty: the default
        min_value=engine.MIN_MAX_LENGTH,
        max_value=131_072,
        initial=engine.DEFAULTS["max_length"],
        help_text="Tokens per conversation + response (the response is kept, the conversation cut from the front); "
        "capped by the model's own limit. Scoring time grows with it.",
    )
    benchmark = forms.FileField(
        required=False, help_text="RewardBench-format JSONL: pool prompts sharing a 13-gram with it are dropped."
    )


def _require_admin(user: Any) -> None:
    if not is_admin(user):
        raise PermissionDenied("Only admins start and steer stage-2 runs.")


def _get_run(project: Project, run_id: int) -> Stage2Run:
    run = (
        Stage2Run.objects.filter(project=project, pk=run_id)
        .select_related("gold_model", "best_model", "dataset_version", "training_job")
        .first()
    )
    if run is None:
        raise Http404("No such stage-2 run.")
    return run


def _benchmark(upload: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "benchmark.jsonl"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        return engine.benchmark_store(path=path, name=upload.name)


@lead_view
def stage2_list(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """The project's stage-2 runs; admins start one here."""
    form = Stage2Form(request.POST or None, request.FILES or None)
    if request.method == "POST":
        _require_admin(request.user)
        if form.is_valid():
            d = form.cleaned_data
            try:
                benchmark = _benchmark(d["benchmark"]) if d["benchmark"] else None
                run = engine.stage2_run_create(
                    project=project,
                    created_by=request.user,
                    benchmark=benchmark,
                    config={
                        k: d[k]
                        for k in ("policy", "band", "flip_margin", "shard_size", "max_length")
                        if d[k] is not None
                    },
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.message_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, " ".join(exc.messages))
            else:
                messages.success(request, f"Stage-2 run started: {run.n_pairs} pairs in {run.n_shards} shards.")
                return redirect("curation:stage2-detail", project_id=project.pk, run_id=run.pk)
    scope = f"project:{project.pk}"
    context = {
        "project": project,
        "form": form,
        "runs": Stage2Run.objects.filter(project=project).select_related("gold_model", "best_model"),
        "can_start": is_admin(request.user),
        "gold": model_version_get_gold(scope),
        "best": model_version_get_current_best(scope),
        "pool": engine.pool_queryset(project).count(),
    }
    return render(request, "curation/stage2_list.html", context)


def _examples(run: Stage2Run) -> dict[str, list[Stage2Result]]:
    found: dict[str, list[Stage2Result]] = {}
    for outcome, ids in (run.summary.get("examples") or {}).items():
        found[outcome] = list(
            Stage2Result.objects.filter(run=run, pair_id__in=ids).select_related("pair").order_by("pair_id")
        )
    return found


@lead_view
def stage2_detail(request: HtmxHttpRequest, project: Project, run_id: int) -> HttpResponse:
    """A run: progress per stage, outcomes by category and source, examples; polled while it runs."""
    run = _get_run(project, run_id)
    context = {
        "project": project,
        "run": run,
        "progress": engine.stage2_progress(run),
        "examples": _examples(run),
        "can_steer": is_admin(request.user),
        # (this run, the paper's 40M) per hardware line, for the run page's help on wall time
        "estimates": list(zip(stage2_estimates(run.n_pairs), stage2_estimates(PAPER_POOL), strict=True)),
        "paper_pool": PAPER_POOL,
        "ledger_pairs_per_s": LEDGER_PAIRS_PER_S,
    }
    if request.htmx:
        response = render(request, "curation/partials/stage2_status.html", context)
        return jobs.poll(request, response, finished=run.is_finished)
    return render(request, "curation/stage2_detail.html", context)


@lead_view
@require_POST
def stage2_action(request: HtmxHttpRequest, project: Project, run_id: int, action: str) -> HttpResponse:
    """Pause, resume, cancel, or retrain the current-best model on the result (admins)."""
    _require_admin(request.user)
    run = _get_run(project, run_id)
    try:
        if action == "train":
            job = engine.stage2_retrain(run=run, created_by=request.user)
            messages.success(request, f"Training job {job.pk} queued: the current best model on this run's result.")
        elif action in ACTIONS:
            ACTIONS[action](run=run)
            messages.success(
                request, f"Run {action}d." if action != "cancel" else "Run cancelled; results so far are kept."
            )
        else:
            raise Http404("No such action.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("curation:stage2-detail", project_id=project.pk, run_id=run.pk)
