"""Curation rounds pages: start a round (admins), watch its steps, download frozen dataset versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from annotation.models import Project
from annotation.roles import is_admin
from config import jobs
from curation.access import HtmxHttpRequest, lead_view
from curation.models import CurationRound, DatasetVersion
from curation.round_checks import round_readiness, round_shortfall
from curation.rounds import DEFAULT_ROUND_CONFIG, round_create, round_resume
from rewardmodel.presets import where_it_runs
from rewardmodel.selectors import training_device_last_seen
from rewardmodel.services import base_model_choices


class RoundForm(forms.Form):
    base_model = forms.ChoiceField(choices=())
    k_max = forms.IntegerField(
        min_value=1,
        max_value=64,
        initial=DEFAULT_ROUND_CONFIG["k_max"],
        help_text="Neighbours retrieved for a mispredicted pair (p ≤ 0.5).",
    )
    gold_val_fraction = forms.FloatField(
        min_value=0.01,
        max_value=1.0,
        initial=DEFAULT_ROUND_CONFIG["gold_val_fraction"],
        help_text="Share of D_gold held out to validate (a fixed hash split).",
    )
    silver_labels = forms.ChoiceField(
        choices=[("source", "Source labels (the import's chosen/rejected)"), ("judges", "LLM judges")],
        initial=DEFAULT_ROUND_CONFIG["silver_labels"],
        required=False,  # absent (an older form or script): the default, source labels
        label="D_silver labels",
        help_text="With LLM judges, the retrieved pairs are sent to the judges; their verdicts train the next round.",
    )
    num_epochs = forms.IntegerField(min_value=1, initial=DEFAULT_ROUND_CONFIG["train"]["num_epochs"])
    learning_rate = forms.FloatField(min_value=0, initial=DEFAULT_ROUND_CONFIG["train"]["learning_rate"])
    batch_size = forms.IntegerField(min_value=1, initial=DEFAULT_ROUND_CONFIG["train"]["batch_size"])
    max_length = forms.IntegerField(min_value=16, initial=DEFAULT_ROUND_CONFIG["train"]["max_length"])
    max_steps = forms.IntegerField(min_value=0, initial=0, help_text="> 0 caps training steps.")
    start_anyway = forms.BooleanField(
        required=False, label="Start anyway", help_text="Run the round although something it needs is missing."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = base_model_choices()  # type: ignore[attr-defined]

    def round_config(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            "base_model": d["base_model"],
            "k_max": d["k_max"],
            "gold_val_fraction": d["gold_val_fraction"],
            "silver_labels": d["silver_labels"] or DEFAULT_ROUND_CONFIG["silver_labels"],
            "train": {k: d[k] for k in ("num_epochs", "learning_rate", "batch_size", "max_length", "max_steps")},
        }


def _require_admin(user: Any) -> None:
    if not is_admin(user):
        raise PermissionDenied("Only admins start curation rounds.")


def _get_round(project: Project, round_id: int) -> CurationRound:
    round_ = (
        CurationRound.objects.filter(project=project, pk=round_id)
        .select_related("model_version", "training_job", "dataset_version")
        .first()
    )
    if round_ is None:
        raise Http404("No such round.")
    return round_


@lead_view
def round_list(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    """Rounds of a project with their accuracy trajectory; admins start the next round here."""
    form = RoundForm(request.POST or None)
    readiness = round_readiness(project)
    if request.method == "POST":
        _require_admin(request.user)
        if form.is_valid() and not readiness.ready and not form.cleaned_data["start_anyway"]:
            form.add_error(
                "start_anyway", "Something this round needs is missing (see above): tick to start it anyway."
            )
        if form.is_valid():
            try:
                round_ = round_create(project=project, created_by=request.user, config=form.round_config())
            except ValidationError as exc:
                if hasattr(exc, "error_dict") and set(exc.error_dict) <= set(form.fields):
                    for name, errors in exc.error_dict.items():
                        form.add_error(name, errors)
                else:
                    form.add_error(None, " ".join(exc.messages))
            else:
                messages.success(request, f"Round {round_.number} queued {where_it_runs(training_device_last_seen())}.")
                return redirect("curation:round-detail", project_id=project.pk, round_id=round_.pk)
    rounds = list(CurationRound.objects.filter(project=project).select_related("model_version"))
    versions = DatasetVersion.objects.filter(project=project).select_related("train_data", "eval_data")[:20]
    return render(
        request,
        "curation/round_list.html",
        {
            "project": project,
            "form": form,
            "rounds": rounds,
            "versions": versions,
            "can_start": is_admin(request.user),
            "readiness": readiness,
        },
    )


@lead_view
def round_detail(request: HtmxHttpRequest, project: Project, round_id: int) -> HttpResponse:
    round_ = _get_round(project, round_id)
    context = {
        "project": project,
        "round": round_,
        "can_start": is_admin(request.user),
        "shortfall": round_shortfall(round_),
        "readiness": round_readiness(project),
    }
    if request.htmx:
        response = render(request, "curation/partials/round_status.html", context)
        return jobs.poll(request, response, finished=round_.is_finished)
    return render(request, "curation/round_detail.html", context)


@lead_view
@require_POST
def round_resume_view(request: HtmxHttpRequest, project: Project, round_id: int) -> HttpResponse:
    _require_admin(request.user)
    round_ = _get_round(project, round_id)
    try:
        round_resume(round_=round_)
        messages.success(request, "Round requeued: finished steps are kept.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("curation:round-detail", project_id=project.pk, round_id=round_id)


@lead_view
def dataset_version_download(request: HtmxHttpRequest, project: Project, version_id: int, part: str) -> FileResponse:
    """The frozen training (D_silver) or validation (D_gold) file of a dataset version, as JSON Lines."""
    version = (
        DatasetVersion.objects.filter(project=project, pk=version_id).select_related("train_data", "eval_data").first()
    )
    data = None if version is None else {"train": version.train_data, "gold": version.eval_data}.get(part)
    if version is None or data is None:
        raise Http404("No such file.")
    filename = f"{project.name}-{version.name}-{part}.jsonl".replace(" ", "-")
    return FileResponse(
        Path(data.path).open("rb"), as_attachment=True, filename=filename, content_type="application/x-ndjson"
    )
