"""The judges against a real small model (SmolLM2-135M-Instruct behind `transformers serve`, offline, CPU).

A 135M model is a weak judge: these tests check the machinery with a real server (answers arrive,
are logged and cached, and each outcome is one of the four), not the model's accuracy.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from curation.judges import services
from curation.judges.models import Judge, JudgeCall
from curation.judges.proposals import pairs_propose_attributes
from curation.judges.voting import RESULTS
from tests.curation.judges.conftest import labelled_pair, make_pair, verify
from tests.factories import PairFactory


def test_a_real_model_judges_pairs_and_a_rerun_costs_nothing(
    project: Any, local_llm: tuple[str, str], settings: Any
) -> None:
    settings.JUDGE_HELDOUT_FRACTION = 0.0  # the held-out slice hashes pair ids, which differ per database
    base_url, model = local_llm
    judge = Judge.objects.create(
        name="smollm2",
        base_url=base_url,
        model=model,
        response_format="none",
        max_tokens=24,
        max_examples=2,
        timeout_s=600,  # machinery, not speed: a loaded shared CPU makes a 135M model slow
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


def test_a_real_model_is_asked_for_attributes_with_verified_examples(
    project: Any, users: dict[str, Any], local_llm: tuple[str, str], settings: Any
) -> None:
    settings.JUDGE_ATTRIBUTE_EXAMPLES = 2
    base_url, model = local_llm
    judge = Judge.objects.create(
        name="smollm2", base_url=base_url, model=model, response_format="none", max_tokens=96, timeout_s=600
    )
    for n, words in enumerate(["How do I bake bread at home?", "How do I bake a cake quickly?"]):
        example = labelled_pair(project, users, words, [{"guideline": f"give the steps {n}"}, {}])
        verify(example, "A")
    target = PairFactory.create(project=project, conversation=[{"role": "user", "content": "How do I bake cookies?"}])
    with mock.patch("curation.judges.services.in_heldout", lambda pid, fraction: False):  # pair ids differ per DB
        result = pairs_propose_attributes(pairs=[target], judges=[judge])[target.pk]
    call = JudgeCall.objects.get(kind="attributes")
    assert call.n_examples == 2 and call.raw and call.latency_ms > 0
    # A 135M model may or may not write valid attributes: either a stored proposal or a named reason.
    target.refresh_from_db()
    if result.values is None:
        assert result.reason and call.status == "unparsed" and target.attribute_proposal is None
    else:
        assert call.status == "ok" and target.attribute_proposal["task_category"] in project.taxonomy
