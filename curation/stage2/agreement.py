"""The run's human-agreement check (Table 19): the stage-2 rule applied to pairs with a known human label.

The pool itself has no human label (verified pairs are not in it), so the check runs on the
project's D_gold pairs that also carry a source label: the human verdict is the known label, and
the question is whether the filter keeps the source label where humans agreed with it and flips it
where they did not. Scores come from the same store as the run's (``PairScore``, one per pair and
model version; only missing ones are scored). The judges are not asked for these pairs: a pair the
best RM does not confirm counts as "best RM disagrees". Caveat, shown with the table: the gold RM
is trained on D_gold, so its agreement here is optimistic.
"""

from __future__ import annotations

from typing import Any

from annotation.models import Pair
from curation.models import VerifiedPair
from curation.stage2 import rules
from curation.stage2.report import AgreementRow, agreement_table

CHUNK = 1000


def stage2_agreement(run: Any) -> dict[str, Any] | None:
    """The agreement table of ``run``'s filter on its project's D_gold pairs with a source label.

    Returns None when there is no such pair. ``run`` is a :class:`~curation.stage2.models.Stage2Run`.
    """
    from curation.stage2.engine import _p_label, filter_config, scores_ensure
    from curation.verdicts import verdicts_for

    fcfg = filter_config(run.config)
    batch = int(run.config.get("score_batch_size", 64))
    ids = list(
        VerifiedPair.objects.filter(project=run.project, pool=VerifiedPair.Pool.GOLD, pair__source_label__in=["A", "B"])
        .order_by("pair_id")
        .values_list("pair_id", flat=True)
    )
    rows: list[AgreementRow] = []
    for start in range(0, len(ids), CHUNK):
        pairs = list(Pair.objects.filter(pk__in=ids[start : start + CHUNK]).order_by("pk"))
        verdicts = verdicts_for(pairs)
        known = [p for p in pairs if verdicts[p.pk].verified and verdicts[p.pk].side in ("A", "B")]
        if not known:
            continue
        max_length = run.config.get("max_length")
        gold = scores_ensure(model=run.gold_model, pairs=known, batch_size=batch, max_length=max_length)
        best = scores_ensure(model=run.best_model, pairs=known, batch_size=batch, max_length=max_length)
        for pair in known:
            p_gold = _p_label(gold[pair.pk], pair.source_label)
            p_best = _p_label(best[pair.pk], pair.source_label)
            decision = rules.decide(p_best, p_gold, rules.JUDGE_NONE, fcfg)
            rows.append(AgreementRow(verdicts[pair.pk].side == pair.source_label, p_best, p_gold, decision.outcome))
    if not rows:
        return None
    return {**agreement_table(rows, fcfg), "data": "D_gold pairs with a source label; judges not asked"}
