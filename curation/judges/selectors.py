"""Reads for the judges page: run progress, per-judge agreement with D_gold, position bias, call log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet, Sum

from annotation.models import Pair, Project
from curation.judges import voting
from curation.judges.examples import in_heldout
from curation.judges.models import Judge, JudgeCall, JudgeCallFailure, JudgeOutcome, JudgeRun, JudgeShard, JudgeVerdict
from curation.judges.services import heldout_fraction
from curation.models import VerifiedPair


@dataclass(frozen=True)
class RunProgress:
    n_pairs: int
    n_done: int
    status: str  # queued / running / done / failed (failed when any shard failed and none still runs)
    errors: list[str]
    counts: dict[str, int]

    @property
    def percent(self) -> int:
        return int(100 * self.n_done / self.n_pairs) if self.n_pairs else 100

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def judge_run_progress(run: JudgeRun) -> RunProgress:
    """How far a run is: outcomes written over pairs, the shards' combined status and their errors."""
    statuses = list(run.shards.values_list("status", "error"))
    states = {s for s, _ in statuses}
    if states & {JudgeShard.Status.RUNNING, JudgeShard.Status.QUEUED}:
        status = "running" if JudgeShard.Status.RUNNING in states or states != {JudgeShard.Status.QUEUED} else "queued"
    elif JudgeShard.Status.FAILED in states:
        status = "failed"
    else:
        status = "done"
    counts = dict(run.outcomes.values_list("result").annotate(n=Count("id")).values_list("result", "n"))
    return RunProgress(
        n_pairs=run.n_pairs,
        n_done=run.outcomes.count(),
        status=status,
        errors=[e for s, e in statuses if s == JudgeShard.Status.FAILED and e],
        counts=counts,
    )


def judge_verdict_for(pair: Pair) -> JudgeVerdict | None:
    """The judges' D_silver label of a pair (``via: judge``), or None."""
    return JudgeVerdict.objects.filter(pair=pair).first()


def judge_runs_for_project(project: Project) -> QuerySet[JudgeRun]:
    return JudgeRun.objects.filter(project=project).prefetch_related("judges").order_by("-id")


def judge_call_stats() -> dict[int, dict[str, Any]]:
    """Per judge: answered calls, unreadable answers, failed attempts, mean latency and token totals."""
    stats: dict[int, dict[str, Any]] = {}
    for row in JudgeCall.objects.values("judge_id").annotate(
        n=Count("id"),
        unparsed=Count("id", filter=Q(status=JudgeCall.Status.UNPARSED)),
        latency=Avg("latency_ms"),
        prompt_tokens=Sum("prompt_tokens"),
        completion_tokens=Sum("completion_tokens"),
    ):
        stats[row["judge_id"]] = {**row, "failures": 0}
    for row in JudgeCallFailure.objects.values("judge_id").annotate(n=Count("id")):
        stats.setdefault(row["judge_id"], {"n": 0, "unparsed": 0, "latency": None})["failures"] = row["n"]
    return stats


@dataclass(frozen=True)
class JudgeQuality:
    judge: Judge
    agreement: voting.Agreement
    bias: voting.PositionBias


def judge_quality(project: Project) -> list[JudgeQuality]:
    """Each judge against D_gold on the held-out slice (never shown as examples), from every run's outcomes.

    Agreement uses each judge's own outcome per pair (the latest run that judged it); position bias
    uses its answers on held-out pairs judged in both orders.
    """
    fraction = heldout_fraction()
    gold = {
        pid: side
        for pid, side in VerifiedPair.objects.filter(project=project, pool=VerifiedPair.Pool.GOLD).values_list(
            "pair_id", "side"
        )
        if in_heldout(pid, fraction)
    }
    latest: dict[tuple[str, int], str] = {}
    # Attribute runs say "proposed"/"failed" about attributes, not sides: never part of a judge's agreement.
    outcomes = JudgeOutcome.objects.filter(run__project=project, pair_id__in=list(gold)).exclude(
        run__purpose=JudgeRun.Purpose.ATTRIBUTES
    )
    for outcome in outcomes.order_by("id"):
        for judge_id, detail in (outcome.per_judge or {}).items():
            result = detail.get("result") if isinstance(detail, dict) else None
            if result in voting.RESULTS:
                latest[(judge_id, outcome.pair_id)] = result
    quality = []
    for judge in Judge.objects.order_by("name"):
        rows = [(result, gold[pid]) for (jid, pid), result in latest.items() if jid == str(judge.pk)]
        answers = JudgeCall.objects.filter(
            judge=judge, pair_id__in=list(gold), status=JudgeCall.Status.OK, kind=JudgeCall.Kind.PAIR
        )
        bias = voting.position_bias((c.pair_id, c.order, c.choice) for c in answers.only("pair_id", "order", "choice"))
        quality.append(JudgeQuality(judge, voting.agreement(rows), bias))
    return quality
