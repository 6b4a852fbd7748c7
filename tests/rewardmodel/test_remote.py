"""The scoring-server client (rewardmodel.remote) against real HTTP stub servers speaking vLLM's and SGLang's formats."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.scoring_stub import StubServer, stub_logit
from rewardmodel import remote


def config(*servers: StubServer, **kwargs: Any) -> remote.ServerConfig:
    kind = servers[0].kind if servers else kwargs.pop("kind")
    urls = kwargs.pop("base_urls", tuple(s.url for s in servers))
    return remote.ServerConfig(kind=kind, base_urls=urls, model="rm", **kwargs)


class Sleeps:
    """Records the backoff delays instead of sleeping them."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def vllm() -> Iterator[StubServer]:
    with StubServer("vllm") as server:
        yield server


@pytest.fixture
def sglang() -> Iterator[StubServer]:
    with StubServer("sglang") as server:
        yield server


TEXTS = [f"<|im_start|>user\nquestion {i}<|im_end|>\n<|im_start|>assistant\nanswer {i}<|im_end|>\n" for i in range(50)]


def test_vllm_gets_the_documented_body_and_raw_logits_come_back(vllm: StubServer) -> None:
    scores = remote.RemoteScorer(config(vllm, batch_size=64)).score(TEXTS[:10])
    assert vllm.requests == [{"model": "rm", "input": TEXTS[:10], "use_activation": False, "add_special_tokens": False}]
    assert scores == [stub_logit(t) for t in TEXTS[:10]]
    assert any(s > 1 for s in scores) and any(s < 0 for s in scores)  # raw logits, not probabilities


def test_sglang_gets_the_documented_body_and_embedding_values_come_back(sglang: StubServer) -> None:
    scores = remote.RemoteScorer(config(sglang, batch_size=64)).score(TEXTS[:10])
    assert sglang.requests == [{"model": "rm", "text": TEXTS[:10]}]
    assert scores == [stub_logit(t) for t in TEXTS[:10]]


def test_batches_spread_over_servers_keep_input_order() -> None:
    with StubServer("vllm") as a, StubServer("vllm") as b:
        scorer = remote.RemoteScorer(config(a, b, batch_size=8, concurrency=2))
        scores = scorer.score(TEXTS)
        assert scores == [stub_logit(t) for t in TEXTS]
        assert sorted(a.batch_sizes() + b.batch_sizes()) == [2] + [8] * 6
        assert a.batch_sizes() and b.batch_sizes()  # both GPUs worked
        assert a.max_in_flight <= 2 and b.max_in_flight <= 2
        assert sorted(a.texts() + b.texts()) == sorted(TEXTS)  # each text sent once
    assert scorer.stats.requests == 7 and scorer.stats.retries == 0


def test_503_is_retried_with_backoff(vllm: StubServer) -> None:
    vllm.fail_next([(503, {}), (503, {})])
    sleeps = Sleeps()
    scorer = remote.RemoteScorer(config(vllm, batch_size=64, backoff_base_s=0.5), sleep=sleeps, rng=random.Random(1))
    assert scorer.score(TEXTS[:10]) == [stub_logit(t) for t in TEXTS[:10]]
    assert scorer.stats.requests == 3 and scorer.stats.retries == 2
    assert len(sleeps.calls) == 2 and 0 <= sleeps.calls[0] <= 0.5 and 0 <= sleeps.calls[1] <= 1.0  # full jitter


def test_429_waits_at_least_retry_after(sglang: StubServer) -> None:
    sglang.fail_next([(429, {"Retry-After": "7"})])
    sleeps = Sleeps()
    scorer = remote.RemoteScorer(config(sglang, batch_size=64), sleep=sleeps)
    assert scorer.score(TEXTS[:10]) == [stub_logit(t) for t in TEXTS[:10]]
    assert len(sleeps.calls) == 1 and sleeps.calls[0] >= 7.0


def test_400_fails_at_once_with_the_servers_message(vllm: StubServer) -> None:
    vllm.fail_next([(400, {})])
    sleeps = Sleeps()
    scorer = remote.RemoteScorer(config(vllm, batch_size=64), sleep=sleeps)
    with pytest.raises(remote.ServerRejected, match=r"/classify answered HTTP 400: injected 400"):
        scorer.score(TEXTS[:10])
    assert scorer.stats.requests == 1 and sleeps.calls == []


def test_a_wrong_model_name_is_named_and_not_retried(vllm: StubServer) -> None:
    cfg = remote.ServerConfig(kind="vllm", base_urls=(vllm.url,), model="other")
    with pytest.raises(remote.ServerRejected, match="HTTP 404: The model `other` does not exist"):
        remote.RemoteScorer(cfg, sleep=Sleeps()).score(TEXTS[:2])


def test_a_slow_server_times_out_and_the_retries_run_out() -> None:
    with StubServer("vllm", delay_s=1.0) as slow:
        sleeps = Sleeps()
        scorer = remote.RemoteScorer(config(slow, timeout_s=0.2, max_retries=1), sleep=sleeps)
        with pytest.raises(remote.ServerUnavailable, match=r"2 attempt\(s\) failed.*did not answer within 0.2 s"):
            scorer.score(TEXTS[:3])
        assert scorer.stats.requests == 2 and len(sleeps.calls) == 1


def test_a_dead_server_fails_over_to_the_next(vllm: StubServer) -> None:
    dead = StubServer("vllm")
    dead_url = dead.url
    dead.server_close()  # nothing listens there any more
    scorer = remote.RemoteScorer(config(kind="vllm", base_urls=(dead_url, vllm.url), batch_size=64), sleep=Sleeps())
    assert scorer.score(TEXTS[:5]) == [stub_logit(t) for t in TEXTS[:5]]
    assert scorer.stats.retries == 1


def test_retries_run_out_with_every_error_named(vllm: StubServer) -> None:
    vllm.fail_next([(502, {}), (500, {}), (503, {})])
    scorer = remote.RemoteScorer(config(vllm, max_retries=2), sleep=Sleeps())
    with pytest.raises(remote.ServerUnavailable) as info:
        scorer.score(TEXTS[:3])
    message = str(info.value)
    assert "3 attempt(s) failed, the last:" in message and "HTTP 503" in message and "HTTP 502" in message


def test_vllm_ignoring_use_activation_is_refused_naming_the_setting() -> None:
    with (
        StubServer("vllm", ignore_use_activation=True) as old,
        pytest.raises(remote.SaturatedScores, match="use_activation") as info,
    ):
        remote.RemoteScorer(config(old)).score(TEXTS[:20])
    assert "--pooler-config" in str(info.value) and "Nothing was stored" in str(info.value)


def test_sglang_probabilities_are_refused() -> None:
    match = r"all 20 scores from the sglang server lie in \[0, 1\]"
    with StubServer("sglang", sigmoid=True) as squashed, pytest.raises(remote.SaturatedScores, match=match):
        remote.RemoteScorer(config(squashed)).score(TEXTS[:20])


def test_saturation_check_can_be_switched_off_and_needs_enough_values() -> None:
    with StubServer("vllm", ignore_use_activation=True) as old:
        probs = remote.RemoteScorer(config(old, check_saturation=False)).score(TEXTS[:20])
        assert all(0 < p < 1 for p in probs)
        assert len(remote.RemoteScorer(config(old)).score(TEXTS[:3])) == 3  # too few values to tell


def test_the_key_is_sent_as_bearer_and_never_in_an_error() -> None:
    with StubServer("vllm", api_key="sk-secret-123") as locked:
        good = remote.RemoteScorer(config(locked, api_key="sk-secret-123"))
        assert good.score(TEXTS[:2]) == [stub_logit(t) for t in TEXTS[:2]]
        assert locked.headers_seen[-1]["Authorization"] == "Bearer sk-secret-123"
        bad = remote.RemoteScorer(config(locked, api_key="sk-wrong-456"), sleep=Sleeps())
        with pytest.raises(remote.ServerRejected, match="HTTP 401") as info:
            bad.score(TEXTS[:2])
    assert "sk-wrong-456" not in str(info.value) and "sk-wrong-456" not in repr(bad.config)


def test_a_response_of_the_wrong_shape_is_named() -> None:
    with pytest.raises(remote.BadResponse, match="expected a list of 2 objects from SGLang"):
        remote.parse_response("sglang", {"embedding": [1.0]}, 2)
    with pytest.raises(remote.BadResponse, match="num_labels=1"):
        remote.parse_response("vllm", {"data": [{"index": 0, "probs": [0.1, 0.9]}]}, 1)
    # vLLM's data items are placed by their index, whatever order they arrive in
    payload = {"data": [{"index": 1, "probs": [-2.0]}, {"index": 0, "probs": [3.0]}]}
    assert remote.parse_response("vllm", payload, 2) == [3.0, -2.0]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of vllm, sglang"):
        remote.ServerConfig(kind="tgi", base_urls=("http://x",), model="m")
    with pytest.raises(ValueError, match="at least one base URL"):
        remote.ServerConfig(kind="vllm", base_urls=(), model="m")


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert remote.retry_after_seconds("3") == 3.0
    assert remote.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: no wait
    assert remote.retry_after_seconds("soon") is None and remote.retry_after_seconds(None) is None
