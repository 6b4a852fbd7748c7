"""Server-rendered pages and htmx fragments of the annotation app.

Each view: look up and check access (the ``_get_*`` helpers), validate with a form, make one
service or selector call, render. A view that also serves an htmx fragment renders only the
partial when ``request.htmx`` is set (STYLE.md section 5).

Access: every page needs a login; a project is visible to its members and to admins, and anyone
else gets a 404 (its existence is not leaked); admin pages answer 403 to non-admins. Annotators only
ever see their own labels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required as auth_login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from annotation import checks, selectors
from annotation import progress as label_progress
from annotation.forms import (
    SHOWN_PREFERENCE_KEYS,
    ImportForm,
    LabelForm,
    ProjectForm,
    SkipForm,
    UserCreateForm,
    UserEditForm,
    shown_preference_label,
)
from annotation.models import Annotation, Assignment, ImportBatch, Pair, Project, Role
from annotation.preference import canonical_to_shown, responses_in_order
from annotation.proposals import proposal_initial
from annotation.roles import is_admin, is_annotator, is_lead, user_roles
from annotation.services import (
    AnnotationInput,
    ServiceError,
    annotation_edit,
    annotation_submit,
    assignment_claim_next,
    assignment_release,
    import_batch_create,
    project_create,
    project_update,
    user_create,
    user_update,
)
from annotation.tools.services import llm_config
from config import jobs
from config.formtools import add_service_errors

View = Callable[..., HttpResponseBase]

#: Session key: the draft key (``edit-<label id>``) of a label edit just saved, for the queue page to drop.
SAVED_DRAFT_SESSION_KEY = "annotation_saved_draft"


class HtmxHttpRequest(HttpRequest):
    """A request that went through django_htmx's middleware (for the type checker)."""

    htmx: HtmxDetails


# --- access helpers ----------------------------------------------------------------------------


def login_required(view: View) -> View:
    """Django's login_required, except that an htmx request is sent to the login page as a whole.

    A plain redirect would be followed by htmx and the login form swapped into the fragment
    (a session that expired while a pair was open); HX-Redirect makes the browser navigate instead,
    and brings the annotator back to the page they were on.
    """
    redirecting = auth_login_required(view)

    @functools.wraps(view)
    def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.htmx and not request.user.is_authenticated:
            back = request.htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back})}")
        return redirecting(request, *args, **kwargs)

    return wrapper


def admin_required(view: View) -> View:
    """Login required (anonymous users go to the login page); non-admins get 403."""

    @functools.wraps(view)
    def wrapper(request: HtmxHttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_admin(request.user):
            raise PermissionDenied("Only admins can open this page.")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _get_project_for_user(user: Any, project_id: int) -> Project:
    """The project if ``user`` may see it; 404 otherwise, so non-members learn nothing of it."""
    project = selectors.project_get_for_user(user, project_id)
    if project is None:
        raise Http404("No such project.")
    return project


def _is_member(project: Project, user: Any) -> bool:
    return project.members.filter(pk=user.pk).exists()


def _get_project_for_labelling(user: Any, project_id: int) -> Project:
    # One query for the project, membership and roles: this runs on every submit.
    access = selectors.project_get_for_labelling(user, project_id)
    if access is None:
        raise Http404("No such project.")
    if not is_annotator(user):
        raise PermissionDenied("Only annotators label pairs.")
    if not access.is_member:
        # Only an admin who is not a member gets here: they can see the project but not label in it.
        raise PermissionDenied("Join the project as a member to label its pairs.")
    return access.project


def _sentence(message: str) -> str:
    """A service's message ("this pair is not assigned to you") as a sentence for the page."""
    message = str(message).strip()
    if not message:
        return message
    return message[:1].upper() + message[1:] + ("" if message[-1] in ".!?" else ".")


# --- home, projects ----------------------------------------------------------------------------


@login_required
def home(request: HtmxHttpRequest) -> HttpResponse:
    """Annotators go to the queue of their first project; everyone else to the project list."""
    if is_annotator(request.user):
        project = selectors.project_list_for_user(request.user).first()
        if project is not None:
            return redirect("annotation:project-queue", project_id=project.pk)
    return redirect("annotation:project-list")


@login_required
def my_queue(request: HtmxHttpRequest) -> HttpResponse:
    if not is_annotator(request.user):
        return redirect("annotation:project-list")
    project = selectors.project_list_for_user(request.user).first()
    if project is None:
        messages.info(request, "You are not a member of any project yet. Ask an admin to add you.")
        return redirect("annotation:project-list")
    return redirect("annotation:project-queue", project_id=project.pk)


@login_required
@require_GET
def project_list(request: HtmxHttpRequest) -> HttpResponse:
    projects = selectors.project_list_for_user(request.user)
    rows = [{"project": p, "progress": selectors.project_progress(p)} for p in projects]
    return render(request, "annotation/project_list.html", {"rows": rows})


@login_required
@require_GET
def project_detail(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_user(request.user, project_id)
    context = {
        "project": project,
        "progress": selectors.project_progress(project),
        "batches": selectors.import_batch_list(project)[:10],
        "can_label": is_annotator(request.user) and _is_member(project, request.user),
        "can_export": is_lead(request.user),
        "members": project.members.order_by("username") if is_lead(request.user) else None,
    }
    return render(request, "annotation/project_detail.html", context)


@admin_required
@require_http_methods(["GET", "POST"])
def project_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ProjectForm(request.POST)
        if form.is_valid():
            try:
                project = project_create(
                    created_by=request.user, members=list(form.cleaned_data["members"]), **form.service_fields()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"Project “{project.name}” created.")
                return redirect("annotation:project-detail", project_id=project.pk)
    else:
        defaults = Project()
        form = ProjectForm(
            initial={
                "taxonomy": "\n".join(defaults.taxonomy),
                "desired_attributes": "\n".join(defaults.desired_attributes),
                "members": [request.user],
            }
        )
    return render(request, "annotation/project_form.html", {"form": form, "project": None})


@admin_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_user(request.user, project_id)
    if request.method == "POST":
        form = ProjectForm(request.POST)
        if form.is_valid():
            try:
                project = project_update(
                    project=project, members=list(form.cleaned_data["members"]), **form.service_fields()
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, "Project saved.")
                return redirect("annotation:project-detail", project_id=project.pk)
    else:
        form = ProjectForm(initial=ProjectForm.initial_for(project))
    return render(request, "annotation/project_form.html", {"form": form, "project": project})


@login_required
@vary_on_headers("HX-Request")
@require_GET
def project_guidelines(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """The guidelines: a fragment for the side panel (htmx), or a page of their own."""
    project = _get_project_for_user(request.user, project_id)
    template = "annotation/partials/guidelines.html" if request.htmx else "annotation/project_guidelines.html"
    return render(request, template, {"project": project})


# --- the annotator's queue and the labelling page ---------------------------------------------


@login_required
@require_GET
def project_queue(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    project = _get_project_for_labelling(request.user, project_id)
    annotations = list(selectors.annotation_list_for_annotator(project, request.user, limit=25))
    final = selectors.pair_ids_with_final_labels(a.pair_id for a in annotations)
    recent = [
        {
            "annotation": annotation,
            "prompt": _last_user_turn(annotation.pair),
            "preference": shown_preference_label(annotation.preference, annotation.order_shown),
            "editable": annotation.pair_id not in final,
        }
        for annotation in annotations
    ]
    context = {
        "project": project,
        "progress": selectors.annotator_progress(project, request.user),
        "recent": recent,
        # A label edit just saved: its browser draft (static/js/label.js) is dropped by drop_draft.js.
        "saved_draft": request.session.pop(SAVED_DRAFT_SESSION_KEY, None),
    }
    return render(request, "annotation/project_queue.html", context)


def _last_user_turn(pair: Pair) -> str:
    for message in reversed(pair.conversation or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


@login_required
@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def pair_label(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """GET: claim (or resume) the next pair and show it. POST: submit the label, then show the next pair.

    An htmx request gets only the ``#label-panel`` fragment; a plain POST redirects (PRG).
    """
    project = _get_project_for_labelling(request.user, project_id)
    if request.method == "POST":
        return _label_submit(request, project)
    return _label_next(request, project)


def _label_input(data: dict[str, Any]) -> AnnotationInput:
    return AnnotationInput(
        preference=data["preference"],  # a side of the screen: annotation_submit(shown=True) maps it to A/B
        task_category=data["task_category"],
        objectivity=data["objectivity"],
        controversiality=data["controversiality"],
        desired_attributes=list(data["desired_attributes"]),
        guideline=data["guideline"],
        rationale=data["rationale"],
        time_spent_ms=data["time_spent_ms"] or 0,
    )


def _label_submit(request: HtmxHttpRequest, project: Project) -> HttpResponse:
    form = LabelForm(request.POST, project=project)
    if not form.is_valid():
        # Only a form with errors needs the pair again, to show it with them.
        assignment = _posted_assignment(request, project)
        if assignment is None:
            return _label_done(request, project, error="This pair is not assigned to you.")
        if assignment.status == Assignment.Status.SUBMITTED:
            return _label_done(request, project, error="You have already labelled this pair.")
        return _label_render(request, project, assignment, form)
    # The service checks the assignment (theirs, this project's, not yet submitted) under its lock.
    try:
        annotation = annotation_submit(
            assignment_id=form.cleaned_data["assignment"],
            annotator=request.user,
            data=_label_input(form.cleaned_data),
            shown=True,
            project=project,
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        assignment = _posted_assignment(request, project)
        if assignment is None:
            return _label_done(request, project, error="This pair is not assigned to you.")
        return _label_render(request, project, assignment, form)
    except ServiceError as exc:
        return _label_done(request, project, error=_sentence(str(exc)))
    label_progress.label_session_count_incr(project_id=project.pk, session_key=request.session.session_key)
    return _label_done(request, project, notice="Saved.", saved_annotation_id=annotation.pk)


def _posted_assignment(request: HtmxHttpRequest, project: Project) -> Assignment | None:
    """The posted assignment when it is the requesting annotator's own and of this project."""
    try:
        assignment_id = int(request.POST.get("assignment", ""))
    except ValueError:
        return None
    assignment = selectors.assignment_get_for_annotator(assignment_id, request.user)
    if assignment is None or assignment.project_id != project.pk:
        return None
    return assignment


@login_required
@require_POST
def pair_skip(request: HtmxHttpRequest, project_id: int) -> HttpResponse:
    """Give the claimed pair back to the pool and show the next one."""
    project = _get_project_for_labelling(request.user, project_id)
    form = SkipForm(request.POST)
    if not form.is_valid():
        return _label_done(request, project, error="Nothing to skip.")
    try:
        assignment_release(assignment_id=form.cleaned_data["assignment"], annotator=request.user)
    except ServiceError as exc:
        return _label_done(request, project, error=_sentence(str(exc)))
    return _label_done(request, project, notice="Skipped; the pair went back to the pool.")


def _label_done(
    request: HtmxHttpRequest,
    project: Project,
    *,
    notice: str = "",
    error: str = "",
    saved_annotation_id: int | None = None,
) -> HttpResponse:
    """After a submit or skip: htmx gets the next pair's fragment; a plain POST is redirected (PRG)."""
    if request.htmx:
        return _label_next(request, project, notice=notice, error=error, saved_annotation_id=saved_annotation_id)
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect("annotation:pair-label", project_id=project.pk)


def _label_next(
    request: HtmxHttpRequest,
    project: Project,
    *,
    notice: str = "",
    error: str = "",
    saved_annotation_id: int | None = None,
) -> HttpResponse:
    try:
        assignment = assignment_claim_next(project=project, annotator=request.user)
    except ServiceError as exc:
        return _label_render(request, project, None, None, error=_sentence(str(exc)), claim_failed=True)
    # An LLM's attribute proposal on the pair is pre-filled (and marked as a proposal on the page).
    initial = {"assignment": assignment.pk, **proposal_initial(assignment.pair)} if assignment else {}
    form = LabelForm(initial=initial, project=project) if assignment else None
    return _label_render(
        request, project, assignment, form, notice=notice, error=error, saved_annotation_id=saved_annotation_id
    )


#: The keys shown beside the choices of an attribute, after its prefix key (t, o, c, d).
CHOICE_KEYS = "123456789abcdefghijklmnopqrstuvwxyz"


def _keyed_choices(field: Any, choices: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """An attribute's choices with the key that picks each (the first len(CHOICE_KEYS) have one)."""
    value = field.value()
    chosen = {str(v) for v in value} if isinstance(value, list | tuple) else {str(value or "")}
    return [
        {"value": v, "label": label, "key": CHOICE_KEYS[i] if i < len(CHOICE_KEYS) else "", "checked": v in chosen}
        for i, (v, label) in enumerate((str(v), str(label)) for v, label in choices if v != "")
    ]


def _label_render(
    request: HtmxHttpRequest,
    project: Project,
    assignment: Assignment | None,
    form: LabelForm | None,
    *,
    notice: str = "",
    error: str = "",
    claim_failed: bool = False,
    saved_annotation_id: int | None = None,
    editing: Annotation | None = None,
) -> HttpResponse:
    context: dict[str, Any] = {
        "project": project,
        "assignment": assignment,
        "form": form,
        "notice": notice,
        "error": error,
        "claim_failed": claim_failed,
        "saved_annotation_id": saved_annotation_id,
        "editing": editing,
        "progress": label_progress.label_progress(
            project=project, annotator=request.user, session_key=request.session.session_key
        ),
    }
    if assignment is not None and form is not None:
        pair = assignment.pair
        order_shown = editing.order_shown if editing is not None else assignment.order_shown
        # Canonical letters stay on the server: the page only knows "left" and "right".
        left, right = responses_in_order(pair.response_a, pair.response_b, order_shown)
        conversation = list(pair.conversation or [])
        context.update(
            {
                "proposal": pair.attribute_proposal if editing is None else None,
                "pair": pair,
                "turns": conversation,
                "n_turns": len(conversation),
                "left": left,
                "right": right,
                "preference_choices": [
                    {"widget": w, "key": SHOWN_PREFERENCE_KEYS[w.data["value"]]} for w in form["preference"]
                ],
                "attr_choices": {
                    name: _keyed_choices(form[name], list(form.fields[name].choices))  # type: ignore[attr-defined]
                    for name in ("task_category", "objectivity", "controversiality", "desired_attributes")
                },
                "category_chips": len(project.taxonomy) <= len(CHOICE_KEYS),
                "ai_configured": llm_config().is_configured,
                "form_action": (
                    reverse("annotation:annotation-edit", args=[project.pk, editing.pk])
                    if editing is not None
                    else reverse("annotation:pair-label", args=[project.pk])
                ),
            }
        )
    # Known-answer checks (annotation/checks.py): a qualification pair says so, with how far along
    # they are; an attention check looks like any pair. The guidelines open on a first full visit.
    if assignment is not None and assignment.kind == Assignment.Kind.QUALIFICATION:
        context["qualification"] = checks.qualification_status(project, request.user)
    if not request.htmx:
        context["first_visit_guidelines"] = checks.guidelines_first_visit(project=project, annotator=request.user)
    template = "annotation/partials/label_panel.html" if request.htmx else "annotation/pair_label.html"
    return render(request, template, context)


@login_required
@require_http_methods(["GET", "POST"])
def annotation_edit_view(request: HtmxHttpRequest, project_id: int, annotation_id: int) -> HttpResponse:
    """Reopen one's own submitted label and change it, until its pair is verified (then: a message)."""
    project = _get_project_for_labelling(request.user, project_id)
    annotation = selectors.annotation_get_for_editing(annotation_id, request.user, project)
    if annotation is None:
        raise Http404("No such label.")
    if annotation.pair_id in selectors.pair_ids_with_final_labels([annotation.pair_id]):
        messages.error(request, "This pair has been verified; its labels can no longer be changed.")
        return redirect("annotation:project-queue", project_id=project.pk)
    if request.method == "POST":
        form = LabelForm(request.POST, project=project)
        if form.is_valid():
            try:
                revision = annotation_edit(
                    annotation_id=annotation.pk,
                    annotator=request.user,
                    data=_label_input(form.cleaned_data),
                    shown=True,
                    project=project,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            except ServiceError as exc:
                messages.error(request, _sentence(str(exc)))
                return redirect("annotation:project-queue", project_id=project.pk)
            else:
                messages.success(request, "Label updated." if revision else "Nothing changed.")
                # The browser kept the edit as a localStorage draft; the queue page it lands on drops it.
                request.session[SAVED_DRAFT_SESSION_KEY] = f"edit-{annotation.pk}"
                return redirect("annotation:project-queue", project_id=project.pk)
    else:
        form = LabelForm(
            initial={
                "assignment": annotation.assignment_id,
                "preference": canonical_to_shown(annotation.preference, annotation.order_shown),
                "task_category": annotation.task_category,
                "objectivity": annotation.objectivity,
                "controversiality": annotation.controversiality,
                "desired_attributes": list(annotation.desired_attributes),
                "guideline": annotation.guideline,
                "rationale": annotation.rationale,
            },
            project=project,
        )
    assignment = annotation.assignment
    assignment.pair = annotation.pair  # already read with the label
    return _label_render(request, project, assignment, form, editing=annotation)


# --- import and export -------------------------------------------------------------------------


@admin_required
@require_http_methods(["GET", "POST"])
def import_create(request: HtmxHttpRequest) -> HttpResponse:
    projects = selectors.project_list_for_user(request.user)
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, projects=projects)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            batch = import_batch_create(
                project=form.cleaned_data["project"], upload=upload, filename=upload.name, created_by=request.user
            )
            messages.success(request, f"“{batch.filename}” uploaded; the import is running.")
            return redirect("annotation:import-detail", batch_id=batch.pk)
    else:
        initial = {}
        project_id = request.GET.get("project", "")
        if project_id.isdigit():
            initial["project"] = projects.filter(pk=int(project_id)).first()
        form = ImportForm(initial=initial, projects=projects)
    return render(request, "annotation/import_form.html", {"form": form})


@admin_required
@vary_on_headers("HX-Request")
@require_GET
def import_detail(request: HtmxHttpRequest, batch_id: int) -> HttpResponse:
    """The batch page; its status fragment is polled by htmx until the import has finished."""
    batch = get_object_or_404(ImportBatch.objects.select_related("project", "created_by"), pk=batch_id)
    context = {"batch": batch, "project": batch.project}
    if request.htmx:
        response = render(request, "annotation/partials/import_status.html", context)
        return jobs.poll(request, response, finished=batch.is_finished)
    return render(request, "annotation/import_detail.html", context)


# --- users -------------------------------------------------------------------------------------


@admin_required
@require_GET
def user_list(request: HtmxHttpRequest) -> HttpResponse:
    rows = []
    for user in selectors.user_list():
        roles = {g.name for g in user.groups.all() if g.name in Role.values}  # prefetched, no query per row
        if user.is_superuser:
            roles.add(Role.ADMIN.value)
        rows.append({"user": user, "roles": sorted(roles), "projects": [p.name for p in user.projects.all()]})
    return render(request, "annotation/user_list.html", {"rows": rows})


@admin_required
@require_http_methods(["GET", "POST"])
def user_create_view(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = UserCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = user_create(
                    username=data["username"],
                    password=data["password"],
                    roles=data["roles"],
                    projects=list(data["projects"]),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"User “{user.username}” created.")
                return redirect("annotation:user-list")
    else:
        form = UserCreateForm(initial={"roles": [Role.ANNOTATOR.value]})
    return render(request, "annotation/user_form.html", {"form": form, "edited": None})


@admin_required
@require_http_methods(["GET", "POST"])
def user_edit(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    edited = get_object_or_404(get_user_model(), pk=user_id)
    editing_self = edited.pk == request.user.pk
    if request.method == "POST":
        form = UserEditForm(request.POST, editing_self=editing_self)
        if form.is_valid():
            try:
                user_update(user=edited, roles=form.cleaned_data["roles"], projects=list(form.cleaned_data["projects"]))
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, f"User “{edited.username}” saved.")
                return redirect("annotation:user-list")
    else:
        roles = sorted(r for r in user_roles(edited) if r in Role.values)
        form = UserEditForm(
            initial={"roles": roles, "projects": list(edited.projects.all())}, editing_self=editing_self
        )
    return render(request, "annotation/user_form.html", {"form": form, "edited": edited})


@admin_required
@require_POST
def user_token_revoke(request: HtmxHttpRequest, user_id: int) -> HttpResponse:
    """Revoke a user's API token (admins); their API requests with it get 401 from then on."""
    from annotation.tokens import token_revoke

    edited = get_object_or_404(get_user_model(), pk=user_id)
    if token_revoke(user=edited):
        messages.success(request, f"The API token of “{edited.username}” was revoked.")
    else:
        messages.info(request, f"“{edited.username}” had no API token.")
    return redirect("annotation:user-edit", user_id=edited.pk)
