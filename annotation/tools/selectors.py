"""Reads of the annotator tools, with the visibility rules for evidence.

- An annotator uses the tools on a pair only while they hold a claim on it, and sees only their own
  evidence: never another annotator's (labelling is blind).
- Leads and admins (of a project they can see) may use the tools on any of its pairs, and see the
  evidence of every annotator who has submitted a label on the pair, beside the labels, plus their
  own and other reviewers'. An annotator's evidence stays theirs alone until they submit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Model

from annotation.models import Annotation, Assignment, Pair
from annotation.roles import is_lead
from annotation.selectors import pair_get_for_user, pair_labels_visible_to
from annotation.tools.models import AIQuery, CodeRun, Corpus, EvidenceSnippet, SearchQuery, SearchResultOpened

EVIDENCE_MODELS: dict[str, type[Model]] = {
    "search": SearchQuery,
    "open": SearchResultOpened,
    "snippet": EvidenceSnippet,
    "code_run": CodeRun,
    "ai_query": AIQuery,
}


def pair_get_for_tools(user: Any, pair_id: int) -> Pair | None:
    """The pair if ``user`` may use the tools on it now, else None (callers answer 404)."""
    if not getattr(user, "is_authenticated", False):
        return None
    pair = Pair.objects.select_related("project").filter(pk=pair_id).first()
    if pair is None:
        return None
    if Assignment.objects.filter(pair=pair, annotator=user, status=Assignment.Status.CLAIMED).exists():
        return pair
    if is_lead(user) and pair_get_for_user(user, pair_id) is not None:
        return pair
    return None


def pair_get_for_evidence(user: Any, pair_id: int) -> tuple[Pair | None, bool]:
    """(pair, as_reviewer): reviewers see the pair's visible evidence, annotators their own.

    (None, False) when ``user`` has nothing to see on that pair.
    """
    if not getattr(user, "is_authenticated", False):
        return None, False
    if is_lead(user):
        pair = pair_get_for_user(user, pair_id)
        if pair is not None and pair_labels_visible_to(user, pair):
            return pair, True
    pair = Pair.objects.select_related("project").filter(pk=pair_id).first()
    if pair is not None and Assignment.objects.filter(pair=pair, annotator=user).exists():
        return pair, False
    return None, False


@dataclass
class EvidenceItem:
    kind: str  # one of EVIDENCE_MODELS
    created_at: datetime
    annotator_id: int
    annotator_name: str
    obj: Any

    def as_export_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "created_at": self.created_at.isoformat(),
            "annotator_id": self.annotator_id,
            **_export_fields(self.kind, self.obj),
        }


def _export_fields(kind: str, obj: Any) -> dict[str, Any]:
    if kind == "search":
        return {
            "backend": obj.backend,
            "query": obj.query,
            "relaxed": obj.relaxed,
            "error": obj.error,
            "results": [{k: r.get(k) for k in ("rank", "title", "url", "document_id")} for r in obj.results],
        }
    if kind == "open":
        return {
            "search_id": obj.search_id,
            "rank": obj.rank,
            "title": obj.title,
            "url": obj.url,
            "document_id": obj.document_id,
        }
    if kind == "snippet":
        return {
            "title": obj.title,
            "url": obj.url,
            "text": obj.text,
            "note": obj.note,
            "is_verbatim": obj.is_verbatim,
            "document_id": obj.document_id,
        }
    if kind == "code_run":
        return {
            "language": obj.language,
            "code": obj.code,
            "status": obj.status,
            "stdout": obj.stdout,
            "stderr": obj.stderr,
            "exit_code": obj.exit_code,
            "signal": obj.signal,
            "wall_ms": obj.wall_ms,
            "cpu_ms": obj.cpu_ms,
            "limit_hit": obj.limit_hit,
            "limits": obj.limits,
            "sandbox": obj.sandbox,
            "error": obj.error,
        }
    return {
        "question": obj.question,
        "order_shown": obj.order_shown,
        "model": obj.model,
        "status": obj.status,
        "answer": obj.answer,
        "verdict": obj.verdict,
        "error": obj.error,
    }


def _items(
    pair_ids: Iterable[int], *, only_user: Any = None, hidden: dict[int, set[int]] | None = None
) -> dict[int, list[EvidenceItem]]:
    pair_ids = list(pair_ids)
    by_pair: dict[int, list[EvidenceItem]] = defaultdict(list)
    for kind, model in EVIDENCE_MODELS.items():
        rows = model.objects.filter(pair_id__in=pair_ids).select_related("annotator")  # type: ignore[attr-defined]
        if only_user is not None:
            rows = rows.filter(annotator=only_user)
        for row in rows:
            if hidden and row.annotator_id in hidden.get(row.pair_id, set()):
                continue
            by_pair[row.pair_id].append(
                EvidenceItem(kind, row.created_at, row.annotator_id, row.annotator.get_username(), row)
            )
    for items in by_pair.values():
        items.sort(key=lambda item: (item.annotator_name, item.created_at, item.obj.pk))
    return by_pair


def _unsubmitted_annotators(pair_ids: list[int]) -> dict[int, set[int]]:
    """Per pair, the annotators who hold (or held) an assignment on it but have not submitted a label."""
    assigned: dict[int, set[int]] = defaultdict(set)
    for pair_id, annotator_id in Assignment.objects.filter(pair_id__in=pair_ids).values_list("pair_id", "annotator_id"):
        assigned[pair_id].add(annotator_id)
    for pair_id, annotator_id in Annotation.objects.filter(pair_id__in=pair_ids).values_list("pair_id", "annotator_id"):
        assigned[pair_id].discard(annotator_id)
    return assigned


def evidence_for_pair(pair: Pair) -> list[EvidenceItem]:
    """Evidence of ``pair`` that leads may see (callers check the role): every submitted annotator's
    and reviewers', grouped by user, oldest first. Unsubmitted annotators' evidence is left out."""
    return _items([pair.pk], hidden=_unsubmitted_annotators([pair.pk])).get(pair.pk, [])


def evidence_for_annotator(pair: Pair, user: Any) -> list[EvidenceItem]:
    """``user``'s own evidence on ``pair``, oldest first."""
    return _items([pair.pk], only_user=user).get(pair.pk, [])


def evidence_export_for_pairs(pair_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """For export: per pair id, the visible evidence as JSON-ready dicts (same rule as evidence_for_pair)."""
    pair_ids = list(pair_ids)
    items = _items(pair_ids, hidden=_unsubmitted_annotators(pair_ids))
    return {pair_id: [item.as_export_dict() for item in items.get(pair_id, [])] for pair_id in pair_ids}


def search_get_for_user(user: Any, search_id: int) -> SearchQuery | None:
    """One of ``user``'s own searches, on a pair they may still use the tools on."""
    search = SearchQuery.objects.filter(pk=search_id, annotator=user).first()
    if search is None or pair_get_for_tools(user, search.pair_id) is None:
        return None
    return search


def code_run_get_for_user(user: Any, run_id: int) -> CodeRun | None:
    return CodeRun.objects.filter(pk=run_id, annotator=user).first()


def ai_query_get_for_user(user: Any, query_id: int) -> AIQuery | None:
    return AIQuery.objects.filter(pk=query_id, annotator=user).first()


def corpus_list() -> list[Corpus]:
    return list(Corpus.objects.select_related("created_by").order_by("name"))
