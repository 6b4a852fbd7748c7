"""Every write of the annotation app goes through here (keyword-only, validated, atomic)."""

from __future__ import annotations

import logging
import random
import shutil
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, OuterRef, When
from django.utils import timezone

from annotation import checks, preference, proposals
from annotation.importing import ImportResult, ImportValidationError, pairs_import
from annotation.jobs import IMPORT
from annotation.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    Controversiality,
    ImportBatch,
    Objectivity,
    Pair,
    Preference,
    Project,
    Role,
)
from config import jobs

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request that cannot be carried out; the message is meant for the user."""


# --- projects and users ------------------------------------------------------------------------


def _clean_list(values: Any, field: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValidationError({field: "must be a list of strings"})
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not cleaned:
        raise ValidationError({field: "must name at least one entry"})
    return cleaned


def project_create(
    *,
    name: str,
    created_by: Any = None,
    description: str = "",
    guidelines: str = "",
    annotators_per_pair: int | None = None,
    claim_timeout_minutes: int | None = None,
    taxonomy: list[str] | None = None,
    desired_attributes: list[str] | None = None,
    members: list[Any] | None = None,
) -> Project:
    """Create a project. Defaults come from settings.

    ``members``: the project's members, exactly (the creator only if listed); without it the creator
    becomes the one member. Project and members are saved in one transaction.
    """
    project = Project(name=name.strip(), description=description, guidelines=guidelines, created_by=created_by)
    if annotators_per_pair is not None:
        project.annotators_per_pair = annotators_per_pair
    if claim_timeout_minutes is not None:
        project.claim_timeout_minutes = claim_timeout_minutes
    if taxonomy is not None:
        project.taxonomy = _clean_list(taxonomy, "taxonomy")
    if desired_attributes is not None:
        project.desired_attributes = _clean_list(desired_attributes, "desired_attributes")
    project.full_clean()
    with transaction.atomic():
        project.save()
        if members is not None:
            project.members.set(members)
        elif created_by is not None:
            project.members.add(created_by)
    return project


def project_update(*, project: Project, members: list[Any] | None = None, **fields: Any) -> Project:
    """Update editable fields (and, with ``members``, set the members exactly), in one transaction.

    Lowering annotators-per-pair below labels already given is refused, and then nothing changes.
    """
    allowed = {
        "name",
        "description",
        "guidelines",
        "annotators_per_pair",
        "claim_timeout_minutes",
        "taxonomy",
        "desired_attributes",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"unknown project fields: {', '.join(sorted(unknown))}")
    for key in ("taxonomy", "desired_attributes"):
        if key in fields:
            fields[key] = _clean_list(fields[key], key)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        old_n = project.annotators_per_pair
        for key, value in fields.items():
            setattr(project, key, value)
        project.full_clean()
        new_n = project.annotators_per_pair
        if new_n < old_n and project.pairs.filter(n_claimed__gt=new_n).exists():
            raise ValidationError(
                {"annotators_per_pair": f"some pairs already have more than {new_n} claims or labels"}
            )
        project.save()
        if new_n != old_n:
            _project_recount_status(project)
        if members is not None:
            project.members.set(members)
    return project


def _project_recount_status(project: Project) -> None:
    n = project.annotators_per_pair
    pairs = Pair.objects.filter(project=project)
    pairs.filter(n_submitted__gte=n).update(status=Pair.Status.COMPLETE)
    pairs.filter(n_submitted__lt=n, n_claimed__gte=n).update(status=Pair.Status.FULL)
    pairs.filter(n_claimed__lt=n).update(status=Pair.Status.OPEN)


def project_set_members(*, project: Project, users: list[Any]) -> None:
    """Make ``users`` the project's members, exactly."""
    project.members.set(users)


def user_set_projects(*, user: Any, projects: list[Project]) -> None:
    """Make ``user`` a member of exactly ``projects`` (other members of each project stay)."""
    with transaction.atomic():
        user.projects.set(projects)


def user_set_roles(*, user: Any, roles: list[str]) -> None:
    """Replace a user's role groups. Admins also get Django admin access (is_staff)."""
    valid = {r.value for r in Role}
    bad = [r for r in roles if r not in valid]
    if bad:
        raise ValidationError({"roles": f"unknown role(s): {', '.join(bad)}"})
    with transaction.atomic():
        groups = [Group.objects.get_or_create(name=r)[0] for r in roles]
        user.groups.remove(*Group.objects.filter(name__in=valid))
        user.groups.add(*groups)
        user.is_staff = Role.ADMIN.value in roles or user.is_superuser
        user.save(update_fields=["is_staff"])
    if hasattr(user, "_synpref_roles"):
        del user._synpref_roles


def user_create(
    *, username: str, password: str, roles: list[str], email: str = "", projects: list[Project] | None = None
) -> Any:
    """Create a user with ``roles`` (and, with ``projects``, membership of exactly those), in one transaction."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user = user_model(username=username.strip(), email=email)
    user.set_password(password)
    user.full_clean()
    with transaction.atomic():
        user.save()
        user_set_roles(user=user, roles=roles)
        if projects is not None:
            user_set_projects(user=user, projects=projects)
    return user


def user_update(*, user: Any, roles: list[str], projects: list[Project]) -> Any:
    """Replace a user's roles and project memberships together: both change, or (on an error) neither."""
    with transaction.atomic():
        user_set_roles(user=user, roles=roles)
        user_set_projects(user=user, projects=projects)
    return user


# --- import ------------------------------------------------------------------------------------


def import_batch_create(*, project: Project, upload: Any, filename: str, created_by: Any = None) -> ImportBatch:
    """Store an uploaded file and queue its import on a worker (after this transaction commits).

    A broker outage leaves the batch queued with a note; the jobs maintenance task sends it later.
    """
    settings.UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = Path(settings.UPLOAD_DIR) / f"{uuid.uuid4().hex}.jsonl"
    with path.open("wb") as out:
        if hasattr(upload, "chunks"):
            for chunk in upload.chunks():
                out.write(chunk)
        else:
            shutil.copyfileobj(upload, out)
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            project=project,
            filename=Path(filename).name[:500],
            path=str(path),
            created_by=created_by,
            **jobs.queued_fields(),
        )
        jobs.dispatch_on_commit(IMPORT, batch.pk)
    return batch


def import_batch_run(*, batch_id: int) -> ImportBatch | None:
    """Run a queued import (config/jobs.py lifecycle).

    Claimed by compare-and-set, so a duplicate message does nothing; a message redelivered after
    its worker was killed takes the row over once its heartbeat is stale. The import is one
    transaction, so a killed run left nothing behind and the retry starts clean. The upload is
    deleted when the batch ends, whichever way.
    """
    attempt = jobs.claim(IMPORT, batch_id)
    if attempt is None:
        return None
    batch = ImportBatch.objects.select_related("project").get(pk=batch_id)
    path = Path(batch.path)
    errors: list[dict[str, Any]] = []
    with jobs.beating(IMPORT, batch_id, attempt):
        try:
            pairs_import(project=batch.project, path=path, batch=batch)
        except ImportValidationError as exc:
            errors = [e.as_dict() for e in exc.errors]
        except Exception as exc:  # the row must never stay "running"
            logger.exception("import batch %s failed", batch_id)
            errors = [{"line": 0, "field": "", "message": f"import failed: {exc}"}]
    if errors:
        ended = jobs.finish(IMPORT, batch_id, attempt, ImportBatch.Status.FAILED, errors=errors, n_lines=0, path="")
    else:
        ended = jobs.finish(IMPORT, batch_id, attempt, ImportBatch.Status.DONE, errors=[], path="")
    if ended:
        path.unlink(missing_ok=True)
    return ImportBatch.objects.get(pk=batch_id)


def import_file(*, project: Project, path: Path, filename: str | None = None, created_by: Any = None) -> ImportResult:
    """Import a file synchronously (management command, tests). Raises ImportValidationError."""
    batch = ImportBatch(project=project, filename=filename or path.name, created_by=created_by)
    with transaction.atomic():
        batch.status = ImportBatch.Status.RUNNING
        batch.started_at = timezone.now()
        batch.save()
        result = pairs_import(project=project, path=path, batch=batch)
        batch.status = ImportBatch.Status.DONE
        batch.finished_at = timezone.now()
        batch.save(update_fields=["status", "finished_at"])
    return result


# --- queue -------------------------------------------------------------------------------------


def _status_for(n_claimed: int, n_submitted: int, n: int) -> str:
    if n_submitted >= n:
        return Pair.Status.COMPLETE
    if n_claimed >= n:
        return Pair.Status.FULL
    return Pair.Status.OPEN


def assignment_claim_next(*, project: Project, annotator: Any, rng: random.Random | None = None) -> Assignment | None:
    """Give ``annotator`` their open claim in ``project``, or claim the next pair for them.

    The next pair is the highest-priority open pair this annotator has never held. Returns None
    when nothing is left for them. Safe under concurrency: see the comments below.
    """
    _expire_stale_now_and_then()
    now = timezone.now()
    conflicts = 0
    for _attempt in range(CLAIM_ATTEMPTS):
        busy = False
        try:
            with transaction.atomic():
                # One read for the two cheap answers: their open claim, else a retest offered to them.
                # (The labelling page's submit-and-next has a budget of 10 queries.)
                live = (
                    Assignment.objects.select_related("pair")
                    .filter(
                        project=project,
                        annotator=annotator,
                        status__in=[Assignment.Status.CLAIMED, Assignment.Status.OFFERED],
                    )
                    .order_by(Case(When(status=Assignment.Status.CLAIMED, then=0), default=1), "-pair__priority", "id")
                    .first()
                )
                # Qualification gate (annotation/checks.py): one status read, only where it is required.
                gate = checks.qualification_status(project, annotator) if project.qualification_required else None
                if gate is not None and not gate.may_label:
                    if live is not None and live.status == Assignment.Status.CLAIMED:
                        if live.kind == Assignment.Kind.QUALIFICATION:
                            return live
                        _expire(live)  # a real pair held from before qualification was required
                    try:
                        qualifying = checks.claim_qualification(
                            project=project, annotator=annotator, status=gate, now=now, rng=rng
                        )
                    except checks.QualificationFailed as exc:
                        raise ServiceError(str(exc)) from None
                    if qualifying is not None:
                        return qualifying
                    live = None  # just passed: go on to real pairs
                if live is not None and live.status == Assignment.Status.CLAIMED:
                    return live
                offered = (
                    Assignment.objects.select_related("pair")
                    .filter(project=project, annotator=annotator, status=Assignment.Status.OFFERED)
                    .order_by("-pair__priority", "id")
                    .select_for_update(skip_locked=True, of=("self",))
                    .first()
                    if live is not None
                    else None
                )
                if offered is not None:
                    # A retest offered to this annotator only; it looks like any other pair.
                    offered.status = Assignment.Status.CLAIMED
                    offered.claimed_at = now
                    offered.expires_at = now + timedelta(minutes=project.claim_timeout_minutes)
                    offered.save(update_fields=["status", "claimed_at", "expires_at"])
                    return offered
                mine = Assignment.objects.filter(pair=OuterRef("pk"), annotator=annotator)
                # Pairs they never held come first; pairs they skipped (or let expire) only when
                # nothing else is left, so "Skip" does not hand the same pair straight back.
                # Two queries rather than one ORDER BY over a subquery, so each still walks the
                # queue index and stops at the first row.
                pair = None
                for held in (mine, mine.exclude(status=Assignment.Status.EXPIRED)):
                    # Row locks make the counter update safe: two annotators never both take the last
                    # slot of a pair. skip_locked lets them take different pairs instead of queueing
                    # behind each other on the same row.
                    pair = (
                        Pair.objects.filter(project=project, status=Pair.Status.OPEN)
                        .filter(~Exists(held))
                        .select_related("project")  # the project's current N and timeout, not the caller's copy
                        .order_by("-priority", "id")
                        .select_for_update(skip_locked=True, of=("self",))
                        .first()
                    )
                    if pair is not None:
                        break
                if pair is None:
                    # skip_locked also skips rows other claimers hold for a moment: "all locked"
                    # is not "none left". Only report an empty queue when no eligible pair exists.
                    busy = (
                        Pair.objects.filter(project=project, status=Pair.Status.OPEN)
                        .filter(~Exists(mine.exclude(status=Assignment.Status.EXPIRED)))
                        .exists()
                    )
                    if not busy:
                        return None
                if pair is not None:
                    # Now and then a hidden attention check instead (only when real pairs are left).
                    attention = checks.claim_attention(project=project, annotator=annotator, now=now, rng=rng)
                    return attention or _claim(pair, annotator, now, rng)
        except IntegrityError:
            # A concurrent request by the same annotator claimed first (one open claim per
            # project is a unique constraint); loop to return that claim instead.
            conflicts += 1
            if conflicts >= 3:
                break
            continue
        if busy:
            time.sleep(0.02)
    raise ServiceError("could not claim a pair; please retry")


CLAIM_ATTEMPTS = 100
#: Seconds between the lazy expiry sweeps claims make (beat also runs it every minute).
EXPIRE_SWEEP_EVERY = 15


def _expire_stale_now_and_then() -> None:
    """Sweep expired claims at most once per EXPIRE_SWEEP_EVERY seconds per cache, not on every claim.

    Every claim used to scan for stale claims first (one query per pair served); beat's minute sweep
    is the guarantee, this only shortens the wait. ``cache.add`` is atomic, so one request sweeps.
    """
    if cache.add("synpref:expire-sweep", 1, EXPIRE_SWEEP_EVERY):
        assignment_expire_stale(limit=100)


def _claim(pair: Pair, annotator: Any, now: datetime, rng: random.Random | None) -> Assignment:
    """Take one slot of a locked pair for ``annotator`` (inside the caller's transaction)."""
    project = pair.project
    n = project.annotators_per_pair
    pair.n_claimed += 1
    pair.status = _status_for(pair.n_claimed, pair.n_submitted, n)
    pair.save(update_fields=["n_claimed", "status"])
    order = (rng or random).choice([Assignment.Order.AB, Assignment.Order.BA])
    assignment = Assignment.objects.create(
        project=project,
        pair=pair,
        annotator=annotator,
        order_shown=order,
        claimed_at=now,
        expires_at=now + timedelta(minutes=project.claim_timeout_minutes),
    )
    assignment.pair = pair
    return assignment


@dataclass
class AnnotationInput:
    preference: str
    task_category: str
    objectivity: str
    controversiality: str
    desired_attributes: list[str]
    guideline: str
    rationale: str
    time_spent_ms: int


def _validate_input(project: Project, data: AnnotationInput) -> None:
    errors: dict[str, str] = {}
    if data.preference not in Preference.values:
        errors["preference"] = f"must be one of {', '.join(Preference.values)}"
    if data.task_category not in project.taxonomy:
        errors["task_category"] = "must be one of the project's task categories"
    if data.objectivity not in Objectivity.values:
        errors["objectivity"] = f"must be one of {', '.join(Objectivity.values)}"
    if data.controversiality not in Controversiality.values:
        errors["controversiality"] = f"must be one of {', '.join(Controversiality.values)}"
    unknown = [a for a in data.desired_attributes if a not in project.desired_attributes]
    if unknown:
        errors["desired_attributes"] = f"unknown attribute(s): {', '.join(unknown)}"
    if not data.rationale.strip():
        errors["rationale"] = "is required: say briefly why"
    if data.time_spent_ms < 0:
        errors["time_spent_ms"] = "must not be negative"
    if errors:
        raise ValidationError(errors)


def annotation_submit(
    *,
    assignment_id: int,
    annotator: Any,
    data: AnnotationInput,
    shown: bool = False,
    project: Project | None = None,
) -> Annotation:
    """Store ``annotator``'s label for their assignment and close it.

    With ``shown`` the preference is the annotator's left/right answer (``annotation.preference``'s
    shown codes); it is translated to canonical A/B here, with the locked assignment's order shown,
    and nowhere else. Without it, the preference is already canonical (imports, tests, scripts).

    Refuses a label for an assignment that is not theirs (or, given ``project``, not of that project),
    one already submitted, or one whose claim expired after its slot went to someone else. An expired claim whose slot is still free is
    revived, so a slow annotator's work is not lost.
    """
    with transaction.atomic():
        # Lock the assignment, then its pair, in that order everywhere, so a concurrent expiry or
        # claim cannot change the counters between our check and our update.
        # One statement locks both rows (assignment first, as the join reads them) and reads the project.
        assignment = (
            Assignment.objects.select_for_update(of=("self", "pair"))
            .select_related("pair__project")
            .filter(pk=assignment_id, annotator=annotator)
            .first()
        )
        if assignment is None or (project is not None and assignment.project_id != project.pk):
            raise ServiceError("this pair is not assigned to you")
        if assignment.status == Assignment.Status.SUBMITTED:
            raise ServiceError("you have already labelled this pair")
        if assignment.status == Assignment.Status.OFFERED:
            raise ServiceError("open this pair from your queue before labelling it")
        pair = assignment.pair
        project = pair.project
        if assignment.status == Assignment.Status.EXPIRED:
            # An old, released or expired claim: the annotator may have claimed (and labelled) this pair
            # again since. Checked under the pair's lock, so two submissions cannot both pass.
            newer = (
                Assignment.objects.filter(pair=pair, annotator=annotator)
                .exclude(pk=assignment.pk)
                .exclude(status=Assignment.Status.EXPIRED)
                .first()
            )
            if newer is not None and newer.status == Assignment.Status.SUBMITTED:
                raise ServiceError("you have labelled this pair since; this older claim on it cannot be submitted")
            if newer is not None:
                raise ServiceError("you hold a newer claim on this pair; submit your label from that one")
        if shown:
            try:
                data = replace(data, preference=preference.shown_to_canonical(data.preference, assignment.order_shown))
            except ValueError:
                raise ValidationError({"preference": f"must be one of {', '.join(preference.SHOWN_VALUES)}"}) from None
        _validate_input(project, data)
        n = project.annotators_per_pair
        # Retests and known-answer checks are extra labels: never one of the pair's N.
        is_retest = assignment.kind != Assignment.Kind.REGULAR
        is_check = assignment.kind in checks.CHECK_KINDS
        if not is_check and project.qualification_required:
            gate = checks.qualification_status(project, annotator)
            if not gate.may_label:
                raise ServiceError("pass this project's qualification before labelling its pairs")
        if assignment.status == Assignment.Status.EXPIRED and not is_check:
            if (
                pair.n_claimed >= n
                or Assignment.objects.filter(
                    project=project, annotator=annotator, status=Assignment.Status.CLAIMED
                ).exists()
            ):
                raise ServiceError("your claim on this pair expired and it went to another annotator")
            pair.n_claimed += 1
        now = timezone.now()
        assignment.status = Assignment.Status.SUBMITTED
        assignment.submitted_at = now
        assignment.save(update_fields=["status", "submitted_at"])
        if not is_retest:  # a retest label is extra: it never counts towards the pair's N
            pair.n_submitted += 1
            pair.status = _status_for(pair.n_claimed, pair.n_submitted, n)
            pair.save(update_fields=["n_claimed", "n_submitted", "status"])
        claimed_at = assignment.claimed_at or now  # set for every claimed assignment; offered ones are refused above
        wall_ms = max(0, int((now - claimed_at).total_seconds() * 1000))
        annotation = Annotation(
            assignment=assignment,
            pair=pair,
            annotator=annotator,
            preference=data.preference,
            is_retest=is_retest,
            order_shown=assignment.order_shown,
            task_category=data.task_category,
            objectivity=data.objectivity,
            controversiality=data.controversiality,
            desired_attributes=list(dict.fromkeys(data.desired_attributes)),
            guideline=data.guideline.strip(),
            rationale=data.rationale.strip(),
            # The browser's figure excludes time with the tab hidden; it can never exceed wall time.
            time_spent_ms=min(data.time_spent_ms, wall_ms) if data.time_spent_ms else wall_ms,
            wall_time_ms=wall_ms,
            submitted_at=now,
        )
        # An LLM's attribute proposal on the pair: record what the annotator kept and what they changed.
        annotation.proposal_review = proposals.proposal_review_of(pair.attribute_proposal, _label_values(annotation))
        annotation.full_clean(exclude=["assignment", "pair", "annotator"])
        annotation.save()
        if assignment.kind == Assignment.Kind.QUALIFICATION:
            checks.qualification_decide(project=project, annotator=annotator)
        completed = not is_retest and pair.status == Pair.Status.COMPLETE
        if not is_check:  # a check answer is scored on the lead's page; curation has nothing to do
            transaction.on_commit(
                lambda: _announce(annotation.pk, pair.pk, project.pk, is_retest=is_retest, completed=completed)
            )
    return annotation


def _announce(
    annotation_id: int, pair_id: int, project_id: int, *, is_retest: bool, completed: bool, edited: bool = False
) -> None:
    from annotation.signals import annotation_submitted, pair_completed

    annotation_submitted.send(
        sender=Annotation,
        annotation_id=annotation_id,
        pair_id=pair_id,
        project_id=project_id,
        is_retest=is_retest,
        edited=edited,
    )
    if completed:
        pair_completed.send(sender=Pair, pair_id=pair_id, project_id=project_id)


#: The fields of a label an annotator may change after submitting it (and the audit records).
EDITABLE_LABEL_FIELDS = (
    "preference",
    "task_category",
    "objectivity",
    "controversiality",
    "desired_attributes",
    "guideline",
    "rationale",
)


def _label_values(annotation: Annotation) -> dict[str, Any]:
    return {name: getattr(annotation, name) for name in EDITABLE_LABEL_FIELDS}


def annotation_edit(
    *, annotation_id: int, annotator: Any, data: AnnotationInput, shown: bool = False, project: Project | None = None
) -> AnnotationRevision | None:
    """Change ``annotator``'s own submitted label while its pair's labels are not final.

    A pair's labels are final when an app above says so through ``signals.pair_labels_locked``
    (curation: the pair is verified); then this raises ServiceError and changes nothing. ``shown``
    means the preference is in the annotator's left/right terms (mapped with the label's own order
    shown). Every edit keeps the previous and new values in an AnnotationRevision (the audit); the
    label's ``time_spent_ms`` stays the first submit's, the edit's active time goes on the revision.
    After commit ``annotation_submitted`` is sent again (``edited=True``), so agreement is recomputed
    as for a new label. Returns the revision, or None when nothing changed (no revision, no signal).

    A verification that commits while an edit is in flight is not blocked by this check; curation
    recomputes from the labels it reads, and the edit's signal makes it look again.
    """
    from annotation.selectors import pair_ids_with_final_labels

    with transaction.atomic():
        # Locked so two edits of one label (two tabs) apply one after the other, each audited.
        annotation = (
            Annotation.objects.select_for_update(of=("self",))
            .select_related("pair__project")
            .filter(pk=annotation_id, annotator=annotator)
            .first()
        )
        if annotation is None or (project is not None and annotation.pair.project_id != project.pk):
            raise ServiceError("this label is not yours")
        if annotation.pair_id in pair_ids_with_final_labels([annotation.pair_id]):
            raise ServiceError("this pair has been verified; its labels can no longer be changed")
        if shown:
            try:
                data = replace(data, preference=preference.shown_to_canonical(data.preference, annotation.order_shown))
            except ValueError:
                raise ValidationError({"preference": f"must be one of {', '.join(preference.SHOWN_VALUES)}"}) from None
        _validate_input(annotation.pair.project, data)
        before = _label_values(annotation)
        annotation.preference = data.preference
        annotation.task_category = data.task_category
        annotation.objectivity = data.objectivity
        annotation.controversiality = data.controversiality
        annotation.desired_attributes = list(dict.fromkeys(data.desired_attributes))
        annotation.guideline = data.guideline.strip()
        annotation.rationale = data.rationale.strip()
        after = _label_values(annotation)
        if after == before:
            return None
        # Reviewed again against the same proposal (what the annotator changed, as of now).
        annotation.proposal_review = proposals.proposal_review_of(
            proposals.proposed_values(annotation.proposal_review), after
        )
        annotation.full_clean(exclude=["assignment", "pair", "annotator"])
        annotation.save(update_fields=[*EDITABLE_LABEL_FIELDS, "proposal_review"])
        revision = AnnotationRevision.objects.create(
            annotation=annotation,
            editor=annotator,
            before=before,
            after=after,
            time_spent_ms=max(0, min(int(data.time_spent_ms or 0), 2**31 - 1)),
            edited_at=timezone.now(),
        )
        pair_id, project_id, is_retest = annotation.pair_id, annotation.pair.project_id, annotation.is_retest
        transaction.on_commit(
            lambda: _announce(annotation_id, pair_id, project_id, is_retest=is_retest, completed=False, edited=True)
        )
    return revision


def assignment_release(*, assignment_id: int, annotator: Any) -> None:
    """The annotator skips their claimed pair: the slot returns to the pool (they won't get it again soon)."""
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update()
            .filter(pk=assignment_id, annotator=annotator, status=Assignment.Status.CLAIMED)
            .first()
        )
        if assignment is None:
            raise ServiceError("no open claim to release")
        _expire(assignment)


def _expire(assignment: Assignment) -> None:
    if assignment.kind == Assignment.Kind.RETEST:
        # A retest is meant for this annotator: it goes back to their queue, not to the pool.
        assignment.status = Assignment.Status.OFFERED
        assignment.save(update_fields=["status"])
        return
    if assignment.kind in checks.CHECK_KINDS:  # took no slot of the pair: nothing to give back
        assignment.status = Assignment.Status.EXPIRED
        assignment.save(update_fields=["status"])
        return
    pair = Pair.objects.select_for_update().select_related("project").get(pk=assignment.pair_id)
    assignment.status = Assignment.Status.EXPIRED
    assignment.save(update_fields=["status"])
    pair.n_claimed = max(pair.n_submitted, pair.n_claimed - 1)
    pair.status = _status_for(pair.n_claimed, pair.n_submitted, pair.project.annotators_per_pair)
    pair.save(update_fields=["n_claimed", "status"])


def assignment_expire_stale(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Return claims past their expiry to the pool. Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    ids = list(
        Assignment.objects.filter(status=Assignment.Status.CLAIMED, expires_at__lt=now).values_list("pk", flat=True)[
            :limit
        ]
    )
    for assignment_id in ids:
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update(skip_locked=True)
                .filter(pk=assignment_id, status=Assignment.Status.CLAIMED, expires_at__lt=now)
                .first()
            )
            if assignment is not None:
                _expire(assignment)
                expired += 1
    return expired


def assignment_offer_retest(*, pair: Pair, annotator: Any, rng: random.Random | None = None) -> Assignment:
    """Queue a double-blind retest of ``pair`` for ``annotator``, who must never have held it.

    The annotator gets it from their queue like any other pair; the label is stored with
    ``is_retest`` and does not count towards the pair's N.
    """
    with transaction.atomic():
        if Assignment.objects.filter(pair=pair, annotator=annotator).exists():
            raise ServiceError(f"annotator {annotator} has already seen pair {pair.pk}")
        if not pair.project.members.filter(pk=annotator.pk).exists():
            raise ServiceError(f"annotator {annotator} is not a member of the project")
        return Assignment.objects.create(
            project_id=pair.project_id,
            pair=pair,
            annotator=annotator,
            status=Assignment.Status.OFFERED,
            kind=Assignment.Kind.RETEST,
            order_shown=(rng or random).choice([Assignment.Order.AB, Assignment.Order.BA]),
        )


def pair_set_priorities(*, priorities: dict[int, float]) -> int:
    """Set each pair's queue priority (higher first); curation uses it to push pairs forward.

    Returns the number of pairs updated.
    """
    by_value: dict[float, list[int]] = {}
    for pair_id, value in priorities.items():
        by_value.setdefault(float(value), []).append(pair_id)
    updated = 0
    with transaction.atomic():
        for value, pair_ids in by_value.items():
            updated += Pair.objects.filter(pk__in=pair_ids).update(priority=value)
    return updated
