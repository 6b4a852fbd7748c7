"""The lead's *Checks* page: qualification and attention-check pairs, thresholds, scores per annotator.

Leads and admins only (a 403 for annotators; a 404 for people who cannot see the project). One
page, one POST endpoint per action; each action validates with a form and calls one service of
annotation/checks.py, then redirects back (PRG) with a message.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotation import checks, selectors
from annotation.models import KnownAnswer, Project
from annotation.roles import is_lead
from annotation.views import login_required
from config.formtools import add_service_errors


class CheckSettingsForm(forms.Form):
    qualification_required = forms.BooleanField(required=False, label="New annotators must qualify")
    qualification_threshold = forms.IntegerField(
        min_value=1, max_value=100, label="Pass mark (% of qualification pairs right)"
    )
    attention_check_rate = forms.IntegerField(min_value=0, max_value=50, label="Attention checks (% of pairs served)")


class KnownAnswerForm(forms.Form):
    pair = forms.IntegerField(min_value=1, label="Pair #")
    purpose = forms.ChoiceField(choices=KnownAnswer.Purpose.choices)
    side = forms.ChoiceField(choices=KnownAnswer.Side.choices, label="Right answer")
    note = forms.CharField(required=False, max_length=2000, label="Why (leads only)")


class PairForm(forms.Form):
    pair = forms.IntegerField(min_value=1)


class AnnotatorForm(forms.Form):
    annotator = forms.IntegerField(min_value=1)
    action = forms.ChoiceField(choices=[("reset", "Let them try again"), ("grant", "Qualify by hand")])


def _get_project_for_lead(user: Any, project_id: int) -> Project:
    project = selectors.project_get_for_user(user, project_id)
    if project is None:
        raise Http404("No such project.")
    if not is_lead(user):
        raise PermissionDenied("Only leads and admins choose check pairs.")
    return project


def _render(request: HttpRequest, project: Project, **forms_: Any) -> HttpResponse:
    context = {
        "project": project,
        "settings_form": forms_.get("settings_form")
        or CheckSettingsForm(
            initial={
                "qualification_required": project.qualification_required,
                "qualification_threshold": round(project.qualification_threshold * 100),
                "attention_check_rate": round(project.attention_check_rate * 100),
            }
        ),
        "known_form": forms_.get("known_form") or KnownAnswerForm(),
        "known": checks.known_answer_list(project),
        "candidates": checks.known_answer_candidates(project, limit=12),
        "results": checks.annotator_check_results(project),
    }
    return render(request, "annotation/project_checks.html", context, status=400 if forms_ else 200)


@login_required
@require_GET
def project_checks(request: HttpRequest, project_id: int) -> HttpResponse:
    return _render(request, _get_project_for_lead(request.user, project_id))


@login_required
@require_POST
def project_checks_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_lead(request.user, project_id)
    form = CheckSettingsForm(request.POST)
    if form.is_valid():
        try:
            checks.check_settings_update(
                project=project,
                qualification_required=form.cleaned_data["qualification_required"],
                qualification_threshold=form.cleaned_data["qualification_threshold"] / 100,
                attention_check_rate=form.cleaned_data["attention_check_rate"] / 100,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Check settings saved.")
            return redirect("annotation:project-checks", project_id=project.pk)
    return _render(request, project, settings_form=form)


@login_required
@require_POST
def project_checks_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_lead(request.user, project_id)
    form = KnownAnswerForm(request.POST)
    if form.is_valid():
        try:
            known = checks.known_answer_set(
                project=project,
                pair_id=form.cleaned_data["pair"],
                purpose=form.cleaned_data["purpose"],
                side=form.cleaned_data["side"],
                note=form.cleaned_data["note"],
                created_by=request.user,
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"Pair {known.pair_id} is now a {known.get_purpose_display().lower()} pair.")
            return redirect("annotation:project-checks", project_id=project.pk)
    return _render(request, project, known_form=form)


@login_required
@require_POST
def project_checks_remove(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_lead(request.user, project_id)
    form = PairForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say which pair to remove.")
    else:
        try:
            checks.known_answer_remove(project=project, pair_id=form.cleaned_data["pair"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Pair {form.cleaned_data['pair']} is no longer a check.")
    return redirect("annotation:project-checks", project_id=project.pk)


@login_required
@require_POST
def project_checks_annotator(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_lead(request.user, project_id)
    form = AnnotatorForm(request.POST)
    annotator = None
    if form.is_valid():
        annotator = project.members.filter(pk=form.cleaned_data["annotator"]).first()
    if annotator is None:
        messages.error(request, "No such member of this project.")
    elif form.cleaned_data["action"] == "reset":
        checks.qualification_reset(project=project, annotator=annotator)
        messages.success(request, f"{annotator.get_username()} can take the qualification again.")
    else:
        checks.qualification_grant(project=project, annotator=annotator)
        messages.success(request, f"{annotator.get_username()} is qualified.")
    return redirect("annotation:project-checks", project_id=project.pk)
