"""Batches: the key that names a batch of pairs (``import:<id>``), and the pairs it holds.

A batch is the unit the gate decides on (:mod:`curation.gate`). Read-only helpers, used by the
gate, the agreement figures, the dashboard and the lead's browser.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from annotation.models import Pair, Project

UNBATCHED = "import:none"


def batch_key_for(import_batch_id: int | None) -> str:
    """The batch key of pairs from an import (``"import:<id>"``; ``"import:none"`` without one)."""
    return f"import:{import_batch_id}" if import_batch_id is not None else UNBATCHED


def batch_key_for_pair(pair: Pair) -> str:
    """The batch key of ``pair``."""
    return batch_key_for(pair.batch_id)


def parse_batch_key(batch_key: str) -> tuple[str, int | None]:
    """``"import:12"`` -> ``("import", 12)``; ``"import:none"`` -> ``("import", None)``.

    Raises ValueError for anything else (round keys arrive with curation rounds).
    """
    kind, _, ident = batch_key.partition(":")
    if kind != "import" or not ident:
        raise ValueError(f"unknown batch key {batch_key!r}; expected import:<id> or {UNBATCHED}")
    if ident == "none":
        return kind, None
    try:
        return kind, int(ident)
    except ValueError:
        raise ValueError(f"unknown batch key {batch_key!r}; expected import:<id> or {UNBATCHED}") from None


def batch_pair_filter(batch_key: str, prefix: str = "") -> Q:
    """A ``Q`` selecting the pairs of one batch (``prefix``: the path to the pair, e.g. ``"pair__"``)."""
    _kind, import_id = parse_batch_key(batch_key)
    if import_id is None:
        return Q(**{f"{prefix}batch__isnull": True})
    return Q(**{f"{prefix}batch_id": import_id})


def batch_pairs(project: Project, batch_key: str) -> QuerySet[Pair]:
    """The pairs of one batch."""
    return Pair.objects.filter(Q(project=project) & batch_pair_filter(batch_key))


def batch_keys(project: Project) -> list[str]:
    """Every batch key that has pairs in ``project`` (import order)."""
    ids = Pair.objects.filter(project=project).values_list("batch_id", flat=True).distinct().order_by("batch_id")
    return [batch_key_for(i) for i in ids]


def batch_name(batch_key: str) -> str:
    """What a batch without an import file is called on the pages."""
    return "Pairs without an import" if batch_key == UNBATCHED else batch_key
