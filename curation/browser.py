"""The lead's data browser: every pair of a project, filtered, keyset-paged, opened, exported.

Filters (all optional, combined with AND):

* ``status``: ``open`` (labels outstanding), ``complete`` (all labels in), ``verified`` (in D_gold
  or D_silver), ``disputed`` (an open dispute), ``discarded``;
* ``batch``: a batch key (``import:<id>``, ``import:none``);
* ``agreement`` among the pair's regular labels: ``unanimous`` (same label, at least two),
  ``same_side`` (same side, strengths differ), ``split`` (sides differ, or a "can't decide");
* ``model``: the project's current-best reward model's stored score (``PairScore``) against the
  verified label: ``disagrees`` (it prefers the other response), ``agrees``, ``unscored``;
* ``annotator`` (labelled by), ``task_category`` (any label says so), ``q`` (text in the
  conversation, either response, or the external id; a number also matches the pair id).

Blindness: a lead who may still label a pair (``annotation.selectors.pair_labels_visible_to``)
sees the pair's text but not its labels, verdict or model score; the export leaves such pairs out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from annotation.models import Annotation, Assignment, Pair, Project
from annotation.roles import is_annotator, is_lead
from annotation.selectors import annotation_list_for_pair
from curation.batches import batch_pair_filter, parse_batch_key
from curation.disputes import dispute_resolutions, tool_evidence
from curation.export import CHUNK
from curation.models import Dispute, DisputeResolution, PairScore, VerifiedPair
from curation.scores import Prediction, model_version_current_best, pair_prediction
from curation.verdicts import Verdict, labels_by_pair, pair_record, verdicts_for

STATUSES: dict[str, str] = {
    "open": "Open (labels outstanding)",
    "complete": "Complete (all labels in)",
    "verified": "Verified",
    "disputed": "Disputed (open dispute)",
    "discarded": "Discarded",
}
AGREEMENTS: dict[str, str] = {
    "unanimous": "Unanimous (same label)",
    "same_side": "Same side, strengths differ",
    "split": "Split (sides differ or can't decide)",
}
MODEL_FILTERS: dict[str, str] = {
    "disagrees": "Model disagrees with the verified label",
    "agrees": "Model agrees with the verified label",
    "unscored": "Not scored by the current model",
}
PAGE_SIZE = 50


@dataclass(frozen=True)
class PairFilters:
    """Validated browser filters (empty string / None: not filtered)."""

    status: str = ""
    batch: str = ""
    agreement: str = ""
    model: str = ""
    annotator_id: int | None = None
    task_category: str = ""
    q: str = ""

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("status", self.status, STATUSES),
            ("agreement", self.agreement, AGREEMENTS),
            ("model", self.model, MODEL_FILTERS),
        ):
            if value and value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if self.batch:
            parse_batch_key(self.batch)  # raises ValueError naming the key


def _label_count(**conditions: Any) -> Coalesce:
    """Regular labels of the outer pair matching ``conditions``, as a scalar subquery (0 when none)."""
    rows = (
        Annotation.objects.filter(pair=OuterRef("pk"), is_retest=False, **conditions)
        .order_by()
        .values("pair")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(rows), Value(0))


def _disagree_q(model_version_id: int) -> Q:
    scores = PairScore.objects.filter(pair=OuterRef("pk"), model_version_id=model_version_id)
    prefers_b = Exists(scores.filter(r_a__lt=F("r_b")))
    prefers_a = Exists(scores.filter(r_b__lt=F("r_a")))
    return (Q(verification__side="A") & prefers_b) | (Q(verification__side="B") & prefers_a)


def pair_browse_queryset(project: Project, filters: PairFilters) -> QuerySet[Pair]:
    """The project's pairs matching ``filters``, in id order (the keyset)."""
    pairs = Pair.objects.filter(project=project)
    status = filters.status
    if status == "open":
        pairs = pairs.exclude(status=Pair.Status.COMPLETE)
    elif status == "complete":
        pairs = pairs.filter(status=Pair.Status.COMPLETE)
    elif status == "verified":
        pairs = pairs.filter(Exists(VerifiedPair.objects.filter(pair=OuterRef("pk"))))
    elif status in ("disputed", "discarded"):
        wanted = Dispute.Status.OPEN if status == "disputed" else Dispute.Status.DISCARDED
        pairs = pairs.filter(Exists(Dispute.objects.filter(pair=OuterRef("pk"), status=wanted)))
    if filters.batch:
        pairs = pairs.filter(batch_pair_filter(filters.batch))
    if filters.annotator_id is not None:
        pairs = pairs.filter(
            Exists(Annotation.objects.filter(pair=OuterRef("pk"), annotator_id=filters.annotator_id, is_retest=False))
        )
    if filters.task_category:
        pairs = pairs.filter(
            Exists(Annotation.objects.filter(pair=OuterRef("pk"), is_retest=False, task_category=filters.task_category))
        )
    if filters.agreement:
        pairs = pairs.annotate(
            n_all=_label_count(),
            n_a=_label_count(preference__startswith="A_"),
            n_b=_label_count(preference__startswith="B_"),
            n_kinds=Coalesce(
                Subquery(
                    Annotation.objects.filter(pair=OuterRef("pk"), is_retest=False)
                    .order_by()
                    .values("pair")
                    .annotate(n=Count("preference", distinct=True))
                    .values("n")
                ),
                Value(0),
            ),
        )
        if filters.agreement == "unanimous":
            pairs = pairs.filter(n_all__gte=2, n_kinds=1).filter(Q(n_a=F("n_all")) | Q(n_b=F("n_all")))
        elif filters.agreement == "same_side":
            pairs = pairs.filter(n_all__gte=2, n_kinds__gt=1).filter(Q(n_a=F("n_all")) | Q(n_b=F("n_all")))
        else:
            pairs = pairs.filter(n_all__gte=1).filter(Q(n_a__gt=0, n_b__gt=0) | Q(n_a__lt=F("n_all") - F("n_b")))
    if filters.model:
        version = model_version_current_best(project)
        if version is None:
            # No current model: nothing is scored by it, nothing agrees or disagrees.
            pairs = pairs if filters.model == "unscored" else pairs.none()
        elif filters.model == "unscored":
            pairs = pairs.exclude(Exists(PairScore.objects.filter(pair=OuterRef("pk"), model_version_id=version.pk)))
        elif filters.model == "disagrees":
            pairs = pairs.filter(_disagree_q(version.pk))
        else:
            scored = Exists(PairScore.objects.filter(pair=OuterRef("pk"), model_version_id=version.pk))
            pairs = pairs.filter(scored, verification__isnull=False).exclude(_disagree_q(version.pk))
    q = filters.q.strip()
    if q:
        text = (
            Q(external_id__icontains=q)
            | Q(response_a__icontains=q)
            | Q(response_b__icontains=q)
            | Q(conversation__icontains=q)
        )
        number = q.lstrip("#")
        if number.isdigit():
            text |= Q(pk=int(number))
        pairs = pairs.filter(text)
    return pairs.order_by("pk")


def labels_hidden_ids(user: Any, pairs: Sequence[Pair]) -> set[int]:
    """Ids of ``pairs`` whose labels ``user`` may not see: the bulk form of ``pair_labels_visible_to``.

    Two queries whatever the number of pairs; ``tests/curation/test_browser.py`` checks it says
    the same as the one-pair rule in every case.
    """
    ids = [p.pk for p in pairs]
    if not is_lead(user):
        return set(ids)
    mine: dict[int, set[str]] = {}
    for pair_id, status in Assignment.objects.filter(pair_id__in=ids, annotator=user).values_list("pair_id", "status"):
        mine.setdefault(pair_id, set()).add(status)
    # Projects where the user can claim pairs: there, an incomplete pair they have not labelled may still be theirs.
    member_of = set(user.projects.values_list("pk", flat=True)) if is_annotator(user) else set()
    live = {Assignment.Status.CLAIMED, Assignment.Status.OFFERED}
    hidden = set()
    for pair in pairs:
        statuses = mine.get(pair.pk, set())
        may_still_label = (
            pair.status != Pair.Status.COMPLETE
            and pair.project_id in member_of
            and Assignment.Status.SUBMITTED not in statuses
        )
        if statuses & live or may_still_label:
            hidden.add(pair.pk)
    return hidden


@dataclass
class BrowseRow:
    """One pair in the browser; ``hidden``: the viewer may still label it, so no labels or verdict."""

    pair: Pair
    hidden: bool
    verdict: Verdict | None = None
    labels: list[Annotation] = field(default_factory=list)
    p_a: float | None = None

    @property
    def model_disagrees(self) -> bool | None:
        """Whether the current model prefers the other side than the verified label (None: not applicable)."""
        if self.p_a is None or self.verdict is None or not self.verdict.verified or self.p_a == 0.5:
            return None
        return (self.p_a > 0.5) != (self.verdict.side == "A")


@dataclass
class BrowsePage:
    rows: list[BrowseRow]
    next_after: int | None
    model_name: str | None


def pair_browse_page(
    project: Project, filters: PairFilters, *, user: Any, after: int | None = None, limit: int = PAGE_SIZE
) -> BrowsePage:
    """One keyset page (ids greater than ``after``) with each visible pair's verdict, labels and model score."""
    queryset = pair_browse_queryset(project, filters).select_related("batch")
    if after is not None:
        queryset = queryset.filter(pk__gt=after)
    pairs = list(queryset[: limit + 1])
    more = len(pairs) > limit
    pairs = pairs[:limit]
    hidden = labels_hidden_ids(user, pairs)
    visible = [p for p in pairs if p.pk not in hidden]
    labels = labels_by_pair(p.pk for p in visible)
    verdicts = verdicts_for(visible, labels) if visible else {}
    version = model_version_current_best(project)
    scores: dict[int, PairScore] = {}
    if version is not None and visible:
        scores = {
            s.pair_id: s
            for s in PairScore.objects.filter(model_version_id=version.pk, pair__in=[p.pk for p in visible])
        }
    rows = []
    for pair in pairs:
        if pair.pk in hidden:
            rows.append(BrowseRow(pair=pair, hidden=True))
            continue
        score = scores.get(pair.pk)
        rows.append(
            BrowseRow(
                pair=pair,
                hidden=False,
                verdict=verdicts[pair.pk],
                labels=labels[pair.pk],
                p_a=score.p_a if score is not None else None,
            )
        )
    return BrowsePage(
        rows=rows, next_after=pairs[-1].pk if more and pairs else None, model_name=getattr(version, "name", None)
    )


def task_categories(project: Project) -> list[str]:
    """The taxonomy plus any category a label used that is no longer in it."""
    used = (
        Annotation.objects.filter(pair__project=project, is_retest=False)
        .values_list("task_category", flat=True)
        .distinct()
        .order_by()
    )
    names = list(project.taxonomy or [])
    return names + sorted(set(used) - set(names))


def browse_export_records(
    project: Project, filters: PairFilters, *, user: Any, fmt: str = "conversational", include_labels: bool = True
) -> Iterator[dict[str, Any]]:
    """The filtered set, one record per visible pair, built by the one record builder
    (:func:`curation.verdicts.pair_record`). Pairs hidden from ``user`` are left out."""
    last = 0
    queryset = pair_browse_queryset(project, filters)
    while pairs := list(queryset.filter(pk__gt=last)[:CHUNK]):
        last = pairs[-1].pk
        hidden = labels_hidden_ids(user, pairs)
        visible = [p for p in pairs if p.pk not in hidden]
        labels = labels_by_pair(p.pk for p in visible)
        verdicts = verdicts_for(visible, labels) if visible else {}
        for pair in visible:
            yield pair_record(pair, verdicts[pair.pk], labels[pair.pk], fmt=fmt, include_labels=include_labels)


@dataclass
class PairInspection:
    """Everything recorded about one pair, for a reviewer who may see its labels."""

    pair: Pair
    verdict: Verdict
    labels: list[Annotation]
    retest_labels: list[Annotation]
    dispute: Dispute | None
    resolutions: list[DisputeResolution]
    verification: VerifiedPair | None
    prediction: Prediction | None
    evidence: list[dict[str, Any]]


def pair_get(project: Project, pair_id: int) -> Pair | None:
    return Pair.objects.filter(project=project, pk=pair_id).select_related("batch").first()


def pair_inspect(project: Project, pair: Pair) -> PairInspection:
    """All labels (retests apart), rationales, attributes, times, the verdict, the dispute and its
    decisions, the current model's score and the tool evidence. Callers check blindness first."""
    annotations = list(annotation_list_for_pair(pair))
    labels = [a for a in annotations if not a.is_retest]
    dispute = Dispute.objects.filter(pair=pair).first()
    return PairInspection(
        pair=pair,
        verdict=verdicts_for([pair], {pair.pk: labels})[pair.pk],
        labels=labels,
        retest_labels=[a for a in annotations if a.is_retest],
        dispute=dispute,
        resolutions=list(dispute_resolutions(dispute)) if dispute is not None else [],
        verification=VerifiedPair.objects.filter(pair=pair).select_related("verified_by").first(),
        prediction=pair_prediction(project, pair),
        evidence=tool_evidence(pair),
    )


# --- one annotator ---------------------------------------------------------------------------------


@dataclass
class AnnotatorProfile:
    """One annotator's work on a project, for leads.

    ``figures``: the latest stored agreement snapshot for the annotator (agreement rate with the
    others, alpha with and without them); ``verdicts``: how often their side matched the verified
    label (``n``, ``agree``, ``agree_strength``, ``rate``); ``retest``: their double-blind retests.
    """

    annotator: Any
    n_labels: int
    n_retests: int
    time_mean_ms: float | None
    time_median_ms: float | None
    wall_median_ms: float | None
    figures: dict[str, Any]
    figures_at: Any
    verdicts: dict[str, Any]
    retest: dict[str, Any]
    retest_rows: list[Any]
    quality_checks: Any = None


def annotator_profile(project: Project, annotator: Any) -> AnnotatorProfile:
    """The figures of the per-annotator page (a handful of queries; label times are read as one column)."""
    from statistics import median

    from curation.models import AgreementSnapshot, RetestResult
    from curation.retests import retest_by_annotator

    mine = Annotation.objects.filter(pair__project=project, annotator=annotator)
    times = list(mine.filter(is_retest=False).values_list("time_spent_ms", "wall_time_ms"))
    active = [t for t, _w in times]
    snapshot = (
        AgreementSnapshot.objects.filter(
            project=project, scope=AgreementSnapshot.Scope.ANNOTATOR, scope_key=str(annotator.pk)
        )
        .order_by("-computed_at", "-id")
        .first()
    )
    n = agree = strict = 0
    for preference, side, strength in mine.filter(is_retest=False, pair__verification__isnull=False).values_list(
        "preference", "pair__verification__side", "pair__verification__strength"
    ):
        n += 1
        if preference.startswith(f"{side}_"):
            agree += 1
            if preference == f"{side}_{strength.upper()}":
                strict += 1
    retest = retest_by_annotator(project).get(annotator.pk, {"n": 0, "agree": 0, "agree_strength": 0, "rate": None})
    return AnnotatorProfile(
        annotator=annotator,
        n_labels=len(times),
        n_retests=mine.filter(is_retest=True).count(),
        time_mean_ms=(sum(active) / len(active)) if active else None,
        time_median_ms=float(median(active)) if active else None,
        wall_median_ms=float(median(w for _t, w in times)) if times else None,
        figures=snapshot.figures if snapshot is not None else {},
        figures_at=snapshot.computed_at if snapshot is not None else None,
        verdicts={"n": n, "agree": agree, "agree_strength": strict, "rate": (agree / n) if n else None},
        retest=retest,
        retest_rows=list(RetestResult.objects.filter(project=project, annotator=annotator).select_related("pair")[:50]),
        quality_checks=_quality_checks(project, annotator),
    )


def _quality_checks(project: Project, annotator: Any) -> Any:
    """Attention-check and qualification results, when the annotation app provides them."""
    from annotation import selectors as annotation_selectors

    reader = getattr(annotation_selectors, "annotator_quality_checks", None)
    return reader(project, annotator) if callable(reader) else None


def annotator_labels_page(
    project: Project, annotator: Any, *, viewer: Any, before: int | None = None, limit: int = PAGE_SIZE
) -> tuple[list[tuple[Annotation, bool]], int | None]:
    """The annotator's labels, newest first, keyset-paged by id; each with ``hidden`` (the viewer
    may still label that pair, so its label is not shown)."""
    rows = Annotation.objects.filter(pair__project=project, annotator=annotator).select_related("pair")
    if before is not None:
        rows = rows.filter(pk__lt=before)
    found = list(rows.order_by("-pk")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    hidden = labels_hidden_ids(viewer, [a.pair for a in found])
    return [(a, a.pair_id in hidden) for a in found], (found[-1].pk if more and found else None)
