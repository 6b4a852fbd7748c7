"""Pointwise mode: each candidate scored alone by the log-probability of "good", against stub servers."""

from __future__ import annotations

import json
import math
import re
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from curation.judges import client, prompt, services, voting
from curation.judges.models import JudgeCall, JudgeCallFailure
from tests.curation.judges.conftest import make_pair, send_json, verify

_RESPONSE = re.compile(r"## The response to judge.*?### Response\n(.*?)\n\n", re.S)


def logprob_judge(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    """Answers one token with OpenAI-style top logprobs: "good" likely when the response says RIGHT."""
    assert body["logprobs"] is True and body["top_logprobs"] == services.POINTWISE_TOP_LOGPROBS
    assert body["max_tokens"] == 1 and "response_format" not in body
    match = _RESPONSE.search(body["messages"][-1]["content"])
    assert match, "no response to judge in the prompt"
    p_good = 0.9 if "RIGHT" in match.group(1) else 0.2
    top = [
        {"token": " good", "logprob": math.log(p_good * 0.7)},
        {"token": "Good", "logprob": math.log(p_good * 0.3)},
        {"token": " bad", "logprob": math.log(1 - p_good)},
    ]
    word = "good" if p_good > 0.5 else "bad"
    send_json(
        request,
        {
            "choices": [
                {"message": {"content": word}, "logprobs": {"content": [{"token": word, "top_logprobs": top}]}}
            ],
            "usage": {"prompt_tokens": 50, "completion_tokens": 1},
        },
    )


def plain_judge(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    """A server that ignores logprobs, as transformers serve does: text only."""
    send_json(request, {"choices": [{"message": {"content": "good"}}]})


def test_logprobs_are_read_from_both_shapes() -> None:
    chat = {
        "choices": [{"logprobs": {"content": [{"token": "a", "top_logprobs": [{"token": "good", "logprob": -0.1}]}]}}]
    }
    legacy = {"choices": [{"logprobs": {"top_logprobs": [{"good": -0.2, "bad": -2.0}]}}]}
    assert prompt.top_logprobs_of(chat) == {"good": -0.1}
    assert prompt.top_logprobs_of(legacy) == {"good": -0.2, "bad": -2.0}
    assert prompt.top_logprobs_of({"choices": [{"message": {"content": "good"}}]}) is None
    assert prompt.top_logprobs_of({"choices": [{"logprobs": None}]}) is None


def test_a_score_adds_spellings_and_bounds_missing_words() -> None:
    scored = prompt.pointwise_score({" good": math.log(0.3), "Good": math.log(0.3), "bad": math.log(0.2)})
    assert scored.logp_good == pytest.approx(math.log(0.6)) and not scored.bounded
    assert scored.score == pytest.approx(math.log(0.6 / 0.2))
    bounded = prompt.pointwise_score({"yes": -0.5, "maybe": -3.0})
    assert bounded.bounded and bounded.logp_bad == -3.0 and bounded.score == pytest.approx(2.5)
    with pytest.raises(ValueError, match="no log-probabilities"):
        prompt.pointwise_score({})


def test_pointwise_votes_have_margins() -> None:
    assert voting.pointwise_vote(1.0, 1.01).result == "tie"
    assert voting.pointwise_vote(1.0, 0.5).as_dict()["result"] == "A"
    assert voting.pointwise_vote(1.0, 0.5).strength == "slightly"
    assert voting.pointwise_vote(-2.0, 0.5) == voting.Outcome("B", "clearly", {"B": 1})


def test_the_pointwise_prompt_shows_one_response_and_examples_as_lessons() -> None:
    target = prompt.PairText([{"role": "user", "content": "q"}], "answer one", "answer two")
    example = prompt.Example(prompt.PairText([{"role": "user", "content": "e"}], "better", "worse"), "A", "clearly")
    messages = prompt.build_pointwise_messages(guideline="", examples=[example], target=target, candidate="B")
    text = messages[-1]["content"]
    assert "answer two" in text and "answer one" not in text and "Candidate" not in text
    assert "better\n\n### Answer\ngood" in text and "worse\n\n### Answer\nbad" in text
    with pytest.raises(ValueError, match="candidate must be 'A' or 'B'"):
        prompt.build_pointwise_messages(guideline="", examples=[], target=target, candidate="1")


def test_a_pointwise_judge_follows_the_content_and_is_cached(
    project: Any, stub: Any, make_judge: Any, settings: Any
) -> None:
    settings.JUDGE_HELDOUT_FRACTION = 0.0  # the one verified pair is an example whatever its id hashes to
    server = stub(logprob_judge)
    judge = make_judge(server.url, mode="pointwise")
    verify(make_pair(project, 100), "A")
    pairs = [make_pair(project, n, right="A" if n % 2 else "B") for n in range(4)]
    outcomes = services.judge_pairs([p.pk for p in pairs], judges=[judge])
    assert {pid: o.result for pid, o in outcomes.items()} == {p.pk: p.source_label for p in pairs}
    assert all(o.strength == "clearly" for o in outcomes.values())  # log(0.9/0.1) − log(0.2/0.8) > 1
    calls = JudgeCall.objects.filter(judge=judge)
    assert calls.count() == 8 == len(server.requests)
    assert {c.order for c in calls} == {"A", "B"} and all(c.kind == "pointwise" and c.score is not None for c in calls)
    right = calls.get(pair=pairs[1], order="A")
    assert right.score == pytest.approx(math.log(0.9 / 0.1)) and json.loads(right.raw)["top_logprobs"]
    assert all(c.n_examples == 1 for c in calls)
    services.judge_pairs([p.pk for p in pairs], judges=[judge])
    assert len(server.requests) == 8  # answered from the cache
    check = services.judge_test_connection(judge=judge)
    assert check.ok and "log-odds of good" in check.message


def test_a_server_without_logprobs_is_said_plainly_never_a_fallback(project: Any, stub: Any, make_judge: Any) -> None:
    judge = make_judge(stub(plain_judge).url, mode="pointwise")
    pair = make_pair(project, 1)
    result = services.pairs_judge(pairs=[pair], judges=[judge], policy=client.RetryPolicy(retries=2))[pair.pk]
    assert result.outcome.result == "failed" and not result.unfinished
    assert "returned no logprobs" in result.per_judge[judge.pk].reason
    assert not JudgeCall.objects.exists()  # not an answer, so nothing cached
    failures = JudgeCallFailure.objects.filter(judge=judge)
    assert failures.count() == 2 and not any(f.transient for f in failures)  # A and B, no retries
    check = services.judge_test_connection(judge=judge)
    assert not check.ok and "returned no logprobs" in check.message
