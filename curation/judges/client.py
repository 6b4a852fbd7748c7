"""One judge call over HTTP with retries (pure: no Django).

The transport is the AI-assist client's (:func:`annotation.tools.llm.post_chat`): any
OpenAI-compatible ``/chat/completions`` endpoint. This module adds what a judge needs on top:
the answer schema in the server's structured-output dialect, token counts, and retries of
transient errors (429, 5xx, timeouts, a server that is down) with exponential backoff and full
jitter, honouring ``Retry-After``. Every failed attempt is reported to the caller (who stores it
apart from answers); the last error is raised when the retries run out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annotation.tools.llm import LLMConfig, LLMError, completion_content, post_chat, response_format_field
from curation.judges.prompt import ANSWER_SCHEMA, top_logprobs_of


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask one judge (the API key is resolved by the caller and never logged)."""

    base_url: str
    model: str
    api_key: str = ""
    response_format: str = "json_schema"
    temperature: float = 0.0
    max_tokens: int = 64
    timeout: float = 60.0
    top_logprobs: int = 0  # > 0: ask for the first tokens' log-probabilities (pointwise mode)

    def parameters(self) -> dict[str, Any]:
        """What besides the prompt shapes the answer: part of the cache key (the key itself is not)."""
        return {
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "response_format": self.response_format,
        }


@dataclass(frozen=True)
class Attempt:
    """A failed attempt: what went wrong, the HTTP status if any, and how long we waited after it."""

    error: str
    status: int | None
    transient: bool
    latency_ms: int
    waited_s: float = 0.0


@dataclass
class Reply:
    """A judge's answer: raw text, token counts (None when the server sends no usage) and latency."""

    content: str
    latency_ms: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str = ""
    failures: list[Attempt] = field(default_factory=list)
    top_logprobs: dict[str, float] | None = None  # the first token's, when asked for and sent


class CallFailed(Exception):
    """Every attempt failed; ``failures`` holds them all (the last one is the reason)."""

    def __init__(self, failures: list[Attempt]) -> None:
        super().__init__(failures[-1].error if failures else "the call failed")
        self.failures = failures

    @property
    def transient(self) -> bool:
        return bool(self.failures) and self.failures[-1].transient


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` extra attempts after the first; delay ``min(cap, base * 2**n)`` with full jitter,
    or the server's ``Retry-After`` when it is longer (capped by ``max_retry_after_s``)."""

    retries: int = 3
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.cap_s, self.base_s * 2**attempt))
        if retry_after is not None:
            return max(min(retry_after, self.max_retry_after_s), backoff)
        return backoff


def request_body(
    endpoint: Endpoint, messages: list[dict[str, str]], schema: tuple[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The chat-completions body for one judge call (structured output in the endpoint's dialect).

    ``schema``: (name, JSON schema) of the answer; default the pairwise choice (:data:`ANSWER_SCHEMA`).
    """
    body: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "temperature": endpoint.temperature,
        "max_tokens": endpoint.max_tokens,
    }
    if endpoint.top_logprobs > 0:
        # Pointwise mode: one token, scored by its log-probabilities; no structured output.
        body["logprobs"] = True
        body["top_logprobs"] = endpoint.top_logprobs
        return body
    name, answer_schema = schema or ("judge_choice", ANSWER_SCHEMA)
    response_format = response_format_field(endpoint.response_format, name, answer_schema)
    if response_format is not None:
        body["response_format"] = response_format
    return body


def _usage(payload: dict[str, Any], key: str) -> int | None:
    usage = payload.get("usage")
    value = usage.get(key) if isinstance(usage, dict) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def call(
    endpoint: Endpoint,
    messages: list[dict[str, str]],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    before_attempt: Callable[[], None] | None = None,
    schema: tuple[str, dict[str, Any]] | None = None,
) -> Reply:
    """Ask once (retrying transient errors); return the :class:`Reply` or raise :class:`CallFailed`.

    ``before_attempt`` runs before every attempt (the caller's rate limiter). Errors that retrying
    cannot fix (400, 401, 404, an answer that is not a chat completion) fail at once.
    """
    policy = policy or RetryPolicy()
    rng = rng or random.Random()
    config = LLMConfig(
        base_url=endpoint.base_url,
        model=endpoint.model,
        api_key=endpoint.api_key,
        response_format=endpoint.response_format,
        timeout=endpoint.timeout,
        max_tokens=endpoint.max_tokens,
        temperature=endpoint.temperature,
    )
    body = request_body(endpoint, messages, schema)
    failures: list[Attempt] = []
    for attempt in range(policy.retries + 1):
        if before_attempt is not None:
            before_attempt()
        started = time.monotonic()
        try:
            payload, latency_ms = post_chat(config, body)
            content = completion_content(payload)
        except LLMError as exc:
            latency = int((time.monotonic() - started) * 1000)
            last = attempt == policy.retries or not exc.transient
            wait = 0.0 if last else policy.delay(attempt, exc.retry_after, rng)
            failures.append(Attempt(str(exc), exc.status, exc.transient, latency, wait))
            if last:
                raise CallFailed(failures) from exc
            sleep(wait)
            continue
        return Reply(
            content=content,
            latency_ms=latency_ms,
            prompt_tokens=_usage(payload, "prompt_tokens"),
            completion_tokens=_usage(payload, "completion_tokens"),
            model=str(payload.get("model") or endpoint.model),
            failures=failures,
            top_logprobs=top_logprobs_of(payload) if endpoint.top_logprobs > 0 else None,
        )
    raise CallFailed(failures)  # not reached: the loop returns or raises
