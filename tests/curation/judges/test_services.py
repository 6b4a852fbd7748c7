"""Judges against stub OpenAI-compatible servers: order mapping, the call log and cache, failures, examples."""

from __future__ import annotations

import json
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from curation.judges import client, services
from curation.judges.examples import in_heldout
from curation.judges.models import JudgeCall, JudgeCallFailure, JudgeVerdict
from curation.models import VerifiedPair
from tests.curation.judges.conftest import content_judge, first_judge, make_pair, send_json, target_candidates, verify

FAST = client.RetryPolicy(retries=2, base_s=0.0, cap_s=0.0, max_retry_after_s=1.5)


def test_outcomes_follow_the_content_whatever_the_order(project: Any, stub: Any, make_judge: Any) -> None:
    server = stub(content_judge)
    judge = make_judge(server.url, samples=3, temperature=0.7)
    pairs = [make_pair(project, n, right="A" if n % 2 else "B") for n in range(6)]
    outcomes = services.judge_pairs([p.pk for p in pairs], judges=[judge])
    assert {pid: o.result for pid, o in outcomes.items()} == {p.pk: p.source_label for p in pairs}
    assert all(o.strength == "clearly" and o.counts == {p.source_label: 1} for p in pairs for o in [outcomes[p.pk]])
    calls = JudgeCall.objects.filter(judge=judge)
    assert calls.count() == 18 == len(server.requests)
    # Each sample draws its own stored order, and both orders occur.
    assert {c.order for c in calls} == {"AB", "BA"}
    for call in calls:
        assert call.prompt_hash and call.raw and call.prompt_tokens == 100 and call.completion_tokens == 9
        assert call.side == ("A" if call.choice == ("1" if call.order == "AB" else "2") else "B")
        assert call.side == next(p.source_label for p in pairs if p.pk == call.pair_id)


def test_a_rerun_costs_nothing(project: Any, stub: Any, make_judge: Any) -> None:
    server = stub(content_judge)
    judge = make_judge(server.url, samples=2, temperature=0.5)
    ids = [make_pair(project, n).pk for n in range(3)]
    first = services.judge_pairs(ids, judges=[judge])
    n_requests = len(server.requests)
    again = services.judge_pairs(ids, judges=[judge])
    assert len(server.requests) == n_requests == 6
    assert {k: v.result for k, v in again.items()} == {k: v.result for k, v in first.items()}
    # A change of parameters is a new question.
    judge.temperature = 0.9
    judge.save()
    services.judge_pairs(ids[:1], judges=[judge])
    assert len(server.requests) == n_requests + 2


def test_both_orders_turn_a_position_biased_judge_into_ties(project: Any, stub: Any, make_judge: Any) -> None:
    judge = make_judge(stub(first_judge).url, mode="both")
    pair = make_pair(project, 1)
    result = services.pairs_judge(pairs=[pair], judges=[judge])[pair.pk]
    assert result.outcome.result == "tie" and result.outcome.counts == {"tie": 1}
    assert result.per_judge[judge.pk].reason == "the orders disagree"
    assert sorted(JudgeCall.objects.values_list("order", flat=True)) == ["AB", "BA"]


def test_429_with_retry_after_is_waited_for_and_kept_apart(project: Any, stub: Any, make_judge: Any) -> None:
    state = {"n": 0}

    def limited(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        state["n"] += 1
        if state["n"] == 1:
            payload = json.dumps({"error": {"message": "slow down"}}).encode()
            request.send_response(429)
            request.send_header("Retry-After", "1")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        content_judge(request, body)

    judge = make_judge(stub(limited).url, concurrency=1)
    pair = make_pair(project, 1, right="B")
    slept: list[float] = []
    reply = client.call(
        services.judge_endpoint(judge),
        [{"role": "user", "content": "## The pair to judge\n### Candidate 1\nx\n\n### Candidate 2\nRIGHT\n\n"}],
        policy=FAST,
        sleep=slept.append,
    )
    assert slept == [1.0] and reply.failures[0].status == 429 and "slow down" in reply.failures[0].error
    state["n"] = 0
    result = services.pairs_judge(pairs=[pair], judges=[judge], policy=FAST)[pair.pk]
    assert result.outcome.result == "B" and not result.unfinished
    failure = JudgeCallFailure.objects.get(judge=judge)
    assert failure.status_code == 429 and failure.waited_s >= 1.0 and failure.transient
    assert JudgeCall.objects.get(judge=judge).attempts == 2


def test_unreadable_answers_are_their_own_outcome(project: Any, stub: Any, make_judge: Any) -> None:
    garbage = stub(lambda r, b: send_json(r, {"choices": [{"message": {"content": "Both have merits."}}]}))
    judge = make_judge(garbage.url, samples=3, temperature=1.0)
    pair = make_pair(project, 1)
    outcome = services.judge_pairs([pair.pk], judges=[judge])[pair.pk]
    assert outcome.result == "failed" and "every judge failed" in outcome.reason
    calls = JudgeCall.objects.filter(judge=judge)
    assert {c.status for c in calls} == {"unparsed"} and all("no choice found" in c.parse_error for c in calls)


def test_server_errors_are_retried_never_cached_and_succeed_later(project: Any, stub: Any, make_judge: Any) -> None:
    state = {"down": True}

    def flaky(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        if state["down"]:
            send_json(request, {"error": {"message": "overloaded"}}, status=503)
        else:
            content_judge(request, body)

    server = stub(flaky)
    judge = make_judge(server.url)
    pair = make_pair(project, 1)
    result = services.pairs_judge(pairs=[pair], judges=[judge], policy=FAST)[pair.pk]
    assert result.unfinished and result.outcome.result == "failed"
    assert len(server.requests) == 3 and JudgeCallFailure.objects.filter(judge=judge, status_code=503).count() == 3
    assert not JudgeCall.objects.exists()
    assert services.judge_pairs([pair.pk], judges=[judge])[pair.pk].result in ("failed", "A")
    state["down"] = False
    assert services.judge_pairs([pair.pk], judges=[judge])[pair.pk].result == "A"
    assert JudgeCall.objects.filter(judge=judge).count() == 1


def test_a_bad_request_fails_at_once(project: Any, stub: Any, make_judge: Any) -> None:
    server = stub(lambda r, b: send_json(r, {"error": {"message": "model 'x' not found"}}, status=404))
    judge = make_judge(server.url)
    pair = make_pair(project, 1)
    result = services.pairs_judge(pairs=[pair], judges=[judge], policy=FAST)[pair.pk]
    assert len(server.requests) == 1 and not result.unfinished and result.outcome.result == "failed"
    assert JudgeCallFailure.objects.get().error.endswith("model 'x' not found")


def test_timeouts_are_transient_failures(project: Any, stub: Any, make_judge: Any) -> None:
    import time

    server = stub(lambda r, b: time.sleep(3))
    judge = make_judge(server.url, timeout_s=1.0)
    pair = make_pair(project, 1)
    result = services.pairs_judge(pairs=[pair], judges=[judge], policy=client.RetryPolicy(retries=0))[pair.pk]
    assert result.unfinished and "did not answer within 1 s" in JudgeCallFailure.objects.get().error


def test_examples_are_similar_verified_pairs_never_heldout_or_the_target(
    project: Any, stub: Any, make_judge: Any
) -> None:
    server = stub(content_judge)
    judge = make_judge(server.url, max_examples=2)
    gold = [make_pair(project, n, topic=t) for n, t in enumerate(["volcanoes", "volcanoes", "bread", "chess"] * 3)]
    for p in gold:
        verify(p, p.source_label)
    target = make_pair(project, 99, topic="volcanoes")
    services.judge_pairs([target.pk], judges=[judge])
    (request,) = server.requests
    text = request["body"]["messages"][-1]["content"]
    assert text.count("## Example ") == 2
    shown_examples = text.split("## The pair to judge")[0]
    assert shown_examples.count("volcanoes") >= 2 and "bread" not in shown_examples
    heldout = [p for p in gold if in_heldout(p.pk, 0.25)]
    for p in heldout:
        assert p.response_a not in shown_examples and p.response_b not in shown_examples
    assert target.response_a not in shown_examples
    assert target_candidates(request["body"])  # the target is last


def test_examples_shrink_when_the_reward_model_is_confident(project: Any) -> None:
    from curation.judges.examples import examples_wanted

    assert examples_wanted(None, 8) == 8 and examples_wanted(0.3, 8) == 8
    assert examples_wanted(0.9, 8) == 1 and examples_wanted(0.75, 8) == 2 and examples_wanted(0.5, 0) == 0


def test_rate_slots_space_requests_across_callers(project: Any, make_judge: Any) -> None:
    judge = make_judge("http://127.0.0.1:9", rate_limit_per_minute=120)
    now = timezone.now()
    waits = [services.rate_slot(judge_id=judge.pk, per_minute=120, now=now) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])
    later = now + timedelta(seconds=10)
    assert services.rate_slot(judge_id=judge.pk, per_minute=120, now=later) == 0.0
    assert services.rate_slot(judge_id=judge.pk, per_minute=0) == 0.0


def test_api_key_from_env_or_file_is_sent_and_missing_ones_are_named(
    project: Any, stub: Any, make_judge: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    server = stub(content_judge)
    judge = make_judge(server.url, api_key="stored-key")
    assert services.judge_endpoint(judge).api_key == "stored-key"
    (tmp_path / "key").write_text("file-key\n")
    judge.api_key_file = str(tmp_path / "key")
    assert services.judge_endpoint(judge).api_key == "file-key"
    judge.api_key_env = "H12_TEST_JUDGE_KEY"
    with pytest.raises(ValidationError, match="H12_TEST_JUDGE_KEY"):
        services.judge_endpoint(judge)
    monkeypatch.setenv("H12_TEST_JUDGE_KEY", "env-key")
    judge.save()
    services.judge_pairs([make_pair(project, 1).pk], judges=[judge])
    assert server.requests[0]["headers"]["Authorization"] == "Bearer env-key"
    assert "env-key" not in repr(judge) and "stored-key" not in str(judge)


def test_connection_check_reports_readable_answers_and_failures(stub: Any, make_judge: Any) -> None:
    ok = services.judge_test_connection(judge=make_judge(stub(first_judge).url))  # candidate 1 (A) is right
    assert ok.ok and "chose the right answer" in ok.message
    garbage = stub(lambda r, b: send_json(r, {"choices": [{"message": {"content": "hmm"}}]}))
    bad = services.judge_test_connection(judge=make_judge(garbage.url))
    assert not bad.ok and "no choice found" in bad.message
    down = services.judge_test_connection(judge=make_judge("http://127.0.0.1:9"))
    assert not down.ok and "unreachable" in down.message
    assert not JudgeCall.objects.exists()


def test_no_judges_is_a_clear_error(project: Any) -> None:
    with pytest.raises(ValidationError, match="no judge is enabled"):
        services.judge_run_create(project=project, pair_ids=[1], purpose="ask")
    assert not VerifiedPair.objects.exists() and not JudgeVerdict.objects.exists()
