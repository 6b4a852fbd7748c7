"""Non-trivial reads of the annotation app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, Exists, OuterRef, Q, QuerySet, When

from annotation.models import Annotation, Assignment, ImportBatch, Pair, Project
from annotation.roles import is_admin, is_annotator, is_lead


def project_list_for_user(user: Any) -> QuerySet[Project]:
    """Admins see every project; everyone else the projects they are a member of."""
    projects = Project.objects.all()
    if not is_admin(user):
        projects = projects.filter(members=user)
    return projects.order_by("name")


def project_get_for_user(user: Any, project_id: int) -> Project | None:
    return project_list_for_user(user).filter(pk=project_id).first()


@dataclass
class ProjectProgress:
    total: int
    open: int
    full: int
    complete: int
    labels_needed: int
    labels_given: int

    @property
    def percent(self) -> float:
        return 100.0 * self.labels_given / self.labels_needed if self.labels_needed else 0.0


def project_progress(project: Project) -> ProjectProgress:
    counts = Pair.objects.filter(project=project).aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status=Pair.Status.OPEN)),
        full=Count("id", filter=Q(status=Pair.Status.FULL)),
        complete=Count("id", filter=Q(status=Pair.Status.COMPLETE)),
    )
    labels_given = Annotation.objects.filter(pair__project=project, is_retest=False).count()
    return ProjectProgress(
        total=counts["total"],
        open=counts["open"],
        full=counts["full"],
        complete=counts["complete"],
        labels_needed=counts["total"] * project.annotators_per_pair,
        labels_given=labels_given,
    )


@dataclass
class AnnotatorProgress:
    done: int
    available: int
    open_claim: Assignment | None
    done_today: int
    median_seconds: float | None


def annotator_progress(project: Project, annotator: Any) -> AnnotatorProgress:
    """An annotator's own figures: labels given, pairs still open to them, their open claim."""
    from django.utils import timezone

    mine = Annotation.objects.filter(pair__project=project, annotator=annotator)
    done = mine.count()
    held = Assignment.objects.filter(project=project, annotator=annotator).exclude(status=Assignment.Status.EXPIRED)
    available = (
        Pair.objects.filter(project=project, status=Pair.Status.OPEN).exclude(pk__in=held.values("pair_id")).count()
        + held.filter(status=Assignment.Status.OFFERED).count()
    )
    open_claim = held.filter(status=Assignment.Status.CLAIMED).select_related("pair").first()
    start_of_day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    times = sorted(mine.values_list("time_spent_ms", flat=True)[:5000])
    median = times[len(times) // 2] / 1000.0 if times else None
    return AnnotatorProgress(
        done=done,
        available=available,
        open_claim=open_claim,
        done_today=mine.filter(submitted_at__gte=start_of_day).count(),
        median_seconds=median,
    )


def annotation_list_for_annotator(project: Project, annotator: Any, limit: int = 50) -> QuerySet[Annotation]:
    """The annotator's own recent labels (never anyone else's)."""
    return (
        Annotation.objects.filter(pair__project=project, annotator=annotator)
        .select_related("pair")
        .order_by("-submitted_at")[:limit]
    )


def pair_labels_visible_to(user: Any, pair: Pair) -> bool:
    """Whether ``user`` may see other people's labels (and tool evidence) on ``pair``: the blindness rule.

    Blindness holds per pair, not per role. Roles may combine (a lead may also annotate), so a lead
    or admin sees the labels of a pair only when they will not label it themselves:

    - never while they hold a live assignment on it (an open claim, or an offered retest);
    - when they can claim pairs in its project (annotator role and member), only once the pair is
      complete or they have submitted their own label on it (they cannot label it again).

    Every reviewer path (``GET /api/pairs/<id>/``, the dispute pages and API, the tool-evidence
    selectors) asks this one function; callers answer 404 or 403 when it says no.
    """
    if not is_lead(user):
        return False
    mine = Assignment.objects.filter(pair=pair, annotator=user)
    if mine.filter(status__in=[Assignment.Status.CLAIMED, Assignment.Status.OFFERED]).exists():
        return False
    if pair.status == Pair.Status.COMPLETE or not is_annotator(user):
        return True
    if not Project.objects.filter(pk=pair.project_id, members=user).exists():
        return True
    return mine.filter(status=Assignment.Status.SUBMITTED).exists()


def annotation_list_for_pair(pair: Pair) -> QuerySet[Annotation]:
    """All labels of a pair, for reviewers only: callers check :func:`pair_labels_visible_to` first."""
    return Annotation.objects.filter(pair=pair).select_related("annotator").order_by("submitted_at")


def pair_list(project: Project, *, status: str | None = None) -> QuerySet[Pair]:
    pairs = Pair.objects.filter(project=project)
    if status:
        pairs = pairs.filter(status=status)
    return pairs.order_by("id")


def pairs_complete_with_annotations(project: Project, chunk: int = 2000) -> Any:
    """Yield (pair, [annotations]) for every pair with all its labels, in id order (keyset paged)."""
    last_id = 0
    while True:
        pairs = list(
            Pair.objects.filter(project=project, status=Pair.Status.COMPLETE, pk__gt=last_id).order_by("id")[:chunk]
        )
        if not pairs:
            return
        by_pair: dict[int, list[Annotation]] = {p.pk: [] for p in pairs}
        for annotation in Annotation.objects.filter(pair_id__in=by_pair, is_retest=False).order_by("submitted_at"):
            by_pair[annotation.pair_id].append(annotation)
        for pair in pairs:
            yield pair, by_pair[pair.pk]
        last_id = pairs[-1].pk


def import_batch_list(project: Project) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(project=project).select_related("created_by").order_by("-created_at")


def assignment_get_for_annotator(assignment_id: int, annotator: Any) -> Assignment | None:
    """The annotator's own assignment with its pair, or None when the id is not theirs."""
    return Assignment.objects.select_related("pair").filter(pk=assignment_id, annotator=annotator).first()


def user_list() -> QuerySet[Any]:
    """Every user with their role groups and projects, for the admin's users page."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.prefetch_related("groups", "projects").order_by("username")


# --- API lookups (each returns None rather than raising, so callers answer 404 without leaking existence) ---


def project_get_for_member(user: Any, project_id: int) -> Project | None:
    """The project only if ``user`` is an explicit member: who may claim pairs in it (admins too need membership)."""
    return Project.objects.filter(pk=project_id, members=user).first()


def pair_get_for_user(user: Any, pair_id: int) -> Pair | None:
    """A pair in one of the projects ``user`` can see; callers still decide how much of it they may see."""
    return (
        Pair.objects.filter(pk=pair_id, project__in=project_list_for_user(user).values("pk"))
        .select_related("project")
        .first()
    )


def assignment_get_for_pair(pair: Pair, annotator: Any) -> Assignment | None:
    """``annotator``'s assignment on ``pair`` that they have seen: the live one (claimed or submitted)
    if any, else the latest expired. None when they never opened it (an offered retest is not yet seen).

    An annotator may hold several expired claims on a pair (released, then claimed again) but at
    most one live one; the live one carries the order they see now.
    """
    return (
        Assignment.objects.filter(pair=pair, annotator=annotator)
        .exclude(status=Assignment.Status.OFFERED)
        .order_by(Case(When(status=Assignment.Status.EXPIRED, then=1), default=0), "-claimed_at")
        .first()
    )


def annotation_get_for_annotator(pair: Pair, annotator: Any) -> Annotation | None:
    """``annotator``'s own label on ``pair`` (there is at most one)."""
    return Annotation.objects.filter(pair=pair, annotator=annotator).first()


def import_batch_get_for_user(user: Any, batch_id: int) -> ImportBatch | None:
    """An import batch of a project ``user`` can see."""
    return (
        ImportBatch.objects.filter(pk=batch_id, project__in=project_list_for_user(user).values("pk"))
        .select_related("project")
        .first()
    )


# --- the labelling page's hot path and label edits -----------------------------------------------


@dataclass
class LabellingAccess:
    """A project and what the user may do in it, read in one query (see project_get_for_labelling)."""

    project: Project
    is_member: bool


def project_get_for_labelling(user: Any, project_id: int) -> LabellingAccess | None:
    """The project with the user's membership and roles, in one query; None when they may not see it.

    The labelling page runs on every submit, so the three lookups that every page needs (the
    project, membership, the user's role groups) are one SELECT with EXISTS subqueries here. The
    roles are handed to ``annotation.roles`` so later checks in the request cost nothing.
    """
    from django.contrib.auth.models import Group

    from annotation.models import Role
    from annotation.roles import remember_roles

    role_exists = {
        role: Exists(Group.objects.filter(user=user.pk, name=role.value))
        for role in (Role.ANNOTATOR, Role.LEAD, Role.ADMIN)
    }
    row = (
        Project.objects.filter(pk=project_id)
        .annotate(
            _is_member=Exists(Project.members.through.objects.filter(project_id=OuterRef("pk"), user_id=user.pk)),
            _annotator=role_exists[Role.ANNOTATOR],
            _lead=role_exists[Role.LEAD],
            _admin=role_exists[Role.ADMIN],
        )
        .first()
    )
    if row is None:
        return None
    flags = {"_annotator": Role.ANNOTATOR, "_lead": Role.LEAD, "_admin": Role.ADMIN}
    remember_roles(user, {role.value for attr, role in flags.items() if getattr(row, attr)})
    is_member = bool(row._is_member)
    if not is_member and not is_admin(user):
        return None
    return LabellingAccess(project=row, is_member=is_member)


def pair_ids_with_final_labels(pair_ids: Iterable[int]) -> set[int]:
    """Which of ``pair_ids`` have final labels, so annotators may no longer edit theirs.

    The annotation app does not know what makes a label final; apps above it answer through the
    ``pair_labels_locked`` signal (curation: the pair is verified). The union of their answers.
    """
    from annotation.signals import pair_labels_locked

    ids = sorted({int(i) for i in pair_ids})
    if not ids:
        return set()
    locked: set[int] = set()
    for _receiver, answer in pair_labels_locked.send(sender=Pair, pair_ids=ids):
        locked.update(int(i) for i in (answer or ()))
    return locked


def annotation_get_for_editing(annotation_id: int, annotator: Any, project: Project) -> Annotation | None:
    """``annotator``'s own label in ``project``, with its pair; None when it is not theirs."""
    return (
        Annotation.objects.select_related("pair", "assignment")
        .filter(pk=annotation_id, annotator=annotator, pair__project=project)
        .first()
    )
