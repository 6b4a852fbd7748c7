"""The judges against a real small model (SmolLM2-135M-Instruct behind `transformers serve`, offline, CPU).

A 135M model is a weak judge: these tests check the machinery with a real server (answers arrive,
are logged and cached, and each outcome is one of the four), not the model's accuracy.
"""

from __future__ import annotations

from typing import Any

from curation.judges import services
from curation.judges.models import Judge, JudgeCall
from curation.judges.voting import RESULTS
from tests.curation.judges.conftest import make_pair, verify


def test_a_real_model_judges_pairs_and_a_rerun_costs_nothing(project: Any, local_llm: tuple[str, str]) -> None:
    base_url, model = local_llm
    judge = Judge.objects.create(
        name="smollm2", base_url=base_url, model=model, response_format="none", max_tokens=24, max_examples=2
    )
    for n in range(3):
        verify(make_pair(project, 100 + n), "A")
    pairs = [make_pair(project, n) for n in range(2)]
    check = services.judge_test_connection(judge=judge)
    assert check.raw or not check.ok  # it answered something (readable or not), or says why not
    outcomes = services.judge_pairs([p.pk for p in pairs], judges=[judge])
    assert set(outcomes) == {p.pk for p in pairs} and all(o.result in RESULTS for o in outcomes.values())
    calls = list(JudgeCall.objects.filter(judge=judge))
    assert len(calls) == 2 and all(c.raw and c.latency_ms > 0 for c in calls)
    assert all((c.status == "ok") == bool(c.side) for c in calls)
    assert all(c.n_examples == 2 for c in calls)  # two verified examples retrieved into each prompt
    again = services.judge_pairs([p.pk for p in pairs], judges=[judge])
    assert JudgeCall.objects.filter(judge=judge).count() == 2
    assert {k: v.result for k, v in again.items()} == {k: v.result for k, v in outcomes.items()}
