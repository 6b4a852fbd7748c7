"""Judges pages: admins configure judges (list, create, edit, test connection); leads see each judge's
agreement with D_gold and position bias, measure it, ask the judges about a pair and watch runs.

Roles are checked here on the server: judge configuration is for admins only; project pages for the
project's leads and admins (annotators 403, non-members 404, as the other lead pages).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.models import Pair, Project
from annotation.roles import is_admin
from config import jobs
from curation.access import HtmxHttpRequest, lead_view
from curation.judges import selectors, services
from curation.judges.forms import JudgeForm
from curation.judges.models import Judge, JudgeRun


def _require_admin(user: Any) -> None:
    if not is_admin(user):
        raise PermissionDenied("Only admins configure judges.")


def _get_judge(judge_id: int) -> Judge:
    judge = Judge.objects.filter(pk=judge_id).first()
    if judge is None:
        raise Http404("No such judge.")
    return judge


def _get_run(project: Project, run_id: int) -> JudgeRun:
    run = JudgeRun.objects.filter(project=project, pk=run_id).prefetch_related("judges").first()
    if run is None:
        raise Http404("No such judge run.")
    return run


@login_required
@require_GET
def judge_list(request: HtmxHttpRequest) -> HttpResponse:
    _require_admin(request.user)
    stats = selectors.judge_call_stats()
    rows = [(judge, stats.get(judge.pk)) for judge in Judge.objects.order_by("name")]
    return render(request, "judges/judge_list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def judge_edit(request: HtmxHttpRequest, judge_id: int | None = None) -> HttpResponse:
    _require_admin(request.user)
    judge = _get_judge(judge_id) if judge_id is not None else Judge()
    form = JudgeForm(request.POST or None, instance=judge)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.judge_save(
                judge=form.save(commit=False),
                api_key=form.cleaned_data["new_api_key"],
                clear_key=form.cleaned_data["clear_key"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Judge {saved.name} saved.")
            return redirect("judges:judge-list")
    status = 400 if request.method == "POST" else 200
    return render(request, "judges/judge_form.html", {"form": form, "judge": judge}, status=status)


@login_required
@require_POST
def judge_test(request: HtmxHttpRequest, judge_id: int) -> HttpResponse:
    _require_admin(request.user)
    check = services.judge_test_connection(judge=_get_judge(judge_id))
    return render(request, "judges/partials/test_result.html", {"check": check, "judge_id": judge_id})


@lead_view
@require_GET
def project_judges(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    runs = list(selectors.judge_runs_for_project(project)[:20])
    return render(
        request,
        "judges/project_judges.html",
        {
            "project": project,
            "quality": selectors.judge_quality(project),
            "runs": [(run, selectors.judge_run_progress(run)) for run in runs],
            "heldout": services.heldout_fraction(),
        },
    )


@lead_view
@require_POST
def judge_eval_start(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    try:
        run = services.judge_eval_create(project=project, user=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"Measuring {run.judges.count()} judges on {run.n_pairs} held-out pairs.")
    return redirect("judges:project", project_id=project.pk)


@lead_view
@require_POST
def attributes_propose_start(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """A lead asks the judges to propose attributes for the project's unlabelled pairs."""
    from curation.judges.proposals import attribute_proposals_create

    try:
        run = attribute_proposals_create(project=project, user=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"Proposing attributes for {run.n_pairs} unlabelled pairs.")
    return redirect("judges:project", project_id=project.pk)


@lead_view
@require_POST
def judge_ask_view(request: HtmxHttpRequest, project: Project, pair_id: int) -> HttpResponse:
    pair = Pair.objects.filter(project=project, pk=pair_id).first()
    if pair is None:
        raise Http404("No such pair.")
    try:
        run = services.judge_ask(pair=pair, user=request.user)
    except ValidationError as exc:
        return render(request, "judges/partials/ask_error.html", {"error": "; ".join(exc.messages)}, status=400)
    return _run_status(request, project, run)


@lead_view
@require_GET
def run_status(request: HtmxHttpRequest, project: Project, run_id: int) -> HttpResponse:
    return _run_status(request, project, _get_run(project, run_id))


def _run_status(request: HtmxHttpRequest, project: Project, run: JudgeRun) -> HttpResponse:
    progress = selectors.judge_run_progress(run)
    outcomes = list(run.outcomes.order_by("pair_id")[:20]) if run.purpose == JudgeRun.Purpose.ASK else []
    judges = {str(j.pk): j.name for j in run.judges.all()}
    context = {"project": project, "run": run, "progress": progress, "outcomes": outcomes, "judge_names": judges}
    response = render(request, "judges/partials/run_status.html", context)
    return jobs.poll(request, response, finished=progress.finished)


@lead_view
@require_POST
def run_resume(request: HtmxHttpRequest, project: Project, run_id: int) -> HttpResponse:
    n = services.judge_run_resume(run=_get_run(project, run_id))
    messages.info(request, f"{n} shards queued again." if n else "Nothing to resume.")
    return redirect("judges:project", project_id=project.pk)
