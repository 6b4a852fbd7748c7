"""Client of external scoring servers: vLLM's ``/classify`` and SGLang's ``/classify`` (pure: no Django, no torch).

An admin runs one server per GPU and lists their base URLs; :class:`RemoteScorer` spreads batches of already
formatted texts over them (``concurrency`` requests in flight per server), retries what is transient and returns
one raw reward per text, in input order.

Wire formats (read from the servers' sources; see docs/training.md, "Scoring at scale"):

* vLLM (``vllm serve MODEL --runner pooling``; ``vllm/entrypoints/pooling/classify/protocol.py``,
  ``ClassificationCompletionRequest`` / ``ClassificationResponse``)::

      POST {base}/classify
      {"model": M, "input": [text, ...], "use_activation": false, "add_special_tokens": false}
      -> {"id", "object": "list", "created", "model",
          "data": [{"index": i, "label", "probs": [r_i], "num_classes": 1}, ...], "usage": {...}}

  ``use_activation`` (formerly ``activation`` / ``softmax``) switches off the sigmoid vLLM applies to a one-label
  classifier by default; ``add_special_tokens: false`` because the text already carries the template's tokens.
* SGLang (``python -m sglang.launch_server --model-path M --is-embedding``; ``/classify`` in
  ``python/sglang/srt/entrypoints/http_server.py`` takes an ``EmbeddingReqInput``; reward heads such as
  ``models/llama_reward.py`` pool with ``normalize=False``, i.e. raw scores)::

      POST {base}/classify
      {"model": M, "text": [text, ...]}
      -> [{"embedding": [r_i], "meta_info": {...}}, ...]        (one object per text, in order)

The sigmoid pitfall: a classify endpoint that applies its activation returns probabilities, which saturate large
margins (σ(8) and σ(12) are both ~1). We always ask for raw scores, and :func:`check_not_saturated` refuses a
response whose values all lie in [0, 1], naming the setting to fix, rather than store probabilities as rewards.

Errors: 429 (honouring ``Retry-After``), 408, 5xx, timeouts and connection errors are retried with exponential
backoff and full jitter, each retry on the next server; other 4xx fail at once (:class:`ServerRejected`) with the
server's own message. The API key is sent as ``Authorization: Bearer`` and never appears in a message.
"""

from __future__ import annotations

import json
import math
import queue
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

VLLM = "vllm"
SGLANG = "sglang"
KINDS = (VLLM, SGLANG)

#: A response of at least this many values, all in [0, 1], is taken as probabilities (see the module docstring).
SATURATION_MIN_VALUES = 8

RAW_SCORE_SETTING = {
    VLLM: (
        "the request sends use_activation=false; this server ignored it (a vLLM older than the use_activation "
        "field, or a pooler forcing an activation): upgrade vLLM, or start it with "
        "--pooler-config '{\"use_activation\": false}' (older versions: '{\"activation\": false}')"
    ),
    SGLANG: (
        "SGLang returns the head's raw output for reward models (LlamaForSequenceClassification & co.); this "
        "model's head applies an activation: serve a checkpoint whose classifier outputs the raw logit"
    ),
}


class RemoteScoringError(Exception):
    """Scoring through a server failed; the message says which server and why (never the key)."""


class ServerRejected(RemoteScoringError):
    """A 4xx other than 408/429: the request itself is wrong (model name, key, body); retrying cannot help."""


class ServerUnavailable(RemoteScoringError):
    """Transient errors (429, 5xx, timeouts, refused connections) outlasted the retries."""


class BadResponse(RemoteScoringError):
    """The server answered 200 with something that is not the documented format."""


class SaturatedScores(RemoteScoringError):
    """Raw scores were asked for and probabilities came back."""


@dataclass(frozen=True)
class ServerConfig:
    """Where and how to score: one kind of server, one or more base URLs (one per GPU), the served model name."""

    kind: str
    base_urls: tuple[str, ...]
    model: str
    api_key: str = field(default="", repr=False)
    batch_size: int = 32
    concurrency: int = 4  # requests in flight per server
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_retry_after_s: float = 120.0
    check_saturation: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.base_urls:
            raise ValueError("at least one base URL is needed")
        for name in ("batch_size", "concurrency"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_retries < 0 or self.timeout_s <= 0:
            raise ValueError("max_retries must be >= 0 and timeout_s > 0")

    @property
    def server_adds_special_tokens(self) -> bool:
        """SGLang's ``/classify`` tokenises with the tokenizer's own special tokens; vLLM is told not to."""
        return self.kind == SGLANG


def classify_url(base_url: str) -> str:
    """``{base}/classify``: both servers mount it at the root (not under ``/v1``)."""
    return base_url.rstrip("/") + "/classify"


def request_body(config: ServerConfig, texts: Sequence[str]) -> dict[str, Any]:
    """The JSON body of one ``/classify`` request for ``texts`` (see the module docstring)."""
    if config.kind == VLLM:
        return {"model": config.model, "input": list(texts), "use_activation": False, "add_special_tokens": False}
    return {"model": config.model, "text": list(texts)}


def parse_response(kind: str, payload: Any, n: int) -> list[float]:
    """One raw score per text, in request order; BadResponse when the payload is not the documented shape."""
    if kind == VLLM:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != n:
            raise BadResponse(f"expected {{'data': [{n} items]}} from vLLM's /classify, got {_shape(payload)}")
        out: list[float | None] = [None] * n
        for item in data:
            index, probs = (item.get("index"), item.get("probs")) if isinstance(item, dict) else (None, None)
            if not isinstance(index, int) or not 0 <= index < n or not isinstance(probs, list):
                raise BadResponse(f"a data item without a valid index and probs list: {str(item)[:200]}")
            out[index] = _one_score(probs, f"data[{index}].probs")
        if any(v is None for v in out):
            raise BadResponse("vLLM's response repeats an index and misses another")
        return [float(v) for v in out if v is not None]
    if not isinstance(payload, list) or len(payload) != n:
        raise BadResponse(f"expected a list of {n} objects from SGLang's /classify, got {_shape(payload)}")
    scores: list[float] = []
    for i, item in enumerate(payload):
        embedding = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(embedding, list):
            raise BadResponse(f"item {i} of SGLang's response has no 'embedding' list")
        scores.append(_one_score(embedding, f"[{i}].embedding"))
    return scores


def _one_score(values: list[Any], where: str) -> float:
    if len(values) != 1:
        raise BadResponse(
            f"{where} has {len(values)} values: a reward model has one output (num_labels=1); "
            "is the server running a multi-class classifier?"
        )
    value = values[0]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadResponse(f"{where} is not a finite number: {value!r}")
    return float(value)


def _shape(payload: Any) -> str:
    if isinstance(payload, dict):
        return "an object with keys " + ", ".join(sorted(map(str, payload))[:8])
    if isinstance(payload, list):
        return f"a list of {len(payload)}"
    return type(payload).__name__


def check_not_saturated(config: ServerConfig, scores: Sequence[float]) -> None:
    """Raise SaturatedScores when at least SATURATION_MIN_VALUES scores came back and all lie in [0, 1]."""
    if not config.check_saturation or len(scores) < SATURATION_MIN_VALUES:
        return
    if all(0.0 <= s <= 1.0 for s in scores):
        raise SaturatedScores(
            f"all {len(scores)} scores from the {config.kind} server lie in [0, 1]: it returned probabilities "
            f"(a sigmoid over the reward), not the raw rewards that were asked for; {RAW_SCORE_SETTING[config.kind]}. "
            "Nothing was stored. (A model whose raw rewards really all lie in [0, 1] can switch the "
            "'check saturation' setting off.)"
        )


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


@dataclass
class _Failure:
    message: str
    retryable: bool
    retry_after: float | None = None


@dataclass
class Stats:
    """Counters of one scorer (for the bench and the ping page)."""

    requests: int = 0
    retries: int = 0
    texts: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class RemoteScorer:
    """Scores formatted texts on the configured servers. Thread-safe; one instance may serve many calls."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.stats = Stats()
        self._lock = threading.Lock()

    # -- one request ---------------------------------------------------------------------------
    def _post(self, base_url: str, body: dict[str, Any]) -> Any:
        """POST once; the parsed JSON on 200, else raise _Attempt with whether to retry."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(
            classify_url(base_url), data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        where = classify_url(base_url)
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = _error_detail(exc)
            retryable = status in (408, 429) or status >= 500
            retry_after = retry_after_seconds(exc.headers.get("Retry-After")) if exc.headers else None
            raise _Attempt(_Failure(f"{where} answered HTTP {status}: {detail}", retryable, retry_after)) from exc
        except TimeoutError as exc:
            raise _Attempt(_Failure(f"{where} did not answer within {self.config.timeout_s:g} s", True)) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                message = f"{where} did not answer within {self.config.timeout_s:g} s"
            else:
                message = f"cannot reach {where}: {reason}"
            raise _Attempt(_Failure(message, True)) from exc
        except (ConnectionError, OSError) as exc:  # reset mid-response, remote closed
            raise _Attempt(_Failure(f"connection to {where} failed: {exc}", True)) from exc
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadResponse(f"{where} answered 200 with a body that is not JSON: {raw[:200]!r}") from exc

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = self.rng.uniform(0.0, min(self.config.backoff_cap_s, self.config.backoff_base_s * 2**attempt))
        if retry_after is not None:
            return max(min(retry_after, self.config.max_retry_after_s), backoff)
        return backoff

    def score_batch(self, texts: Sequence[str], server: int = 0) -> list[float]:
        """Score one batch (one request), retrying transient failures, each retry on the next server."""
        urls = self.config.base_urls
        body = request_body(self.config, texts)
        failures: list[str] = []
        for attempt in range(self.config.max_retries + 1):
            base = urls[(server + attempt) % len(urls)]
            with self._lock:
                self.stats.requests += 1
                self.stats.retries += 1 if attempt else 0
            try:
                payload = self._post(base, body)
            except _Attempt as exc:
                failure = exc.failure
                if not failure.retryable:
                    raise ServerRejected(failure.message) from None
                failures.append(failure.message)
                if attempt < self.config.max_retries:
                    self.sleep(self._delay(attempt, failure.retry_after))
                continue
            scores = parse_response(self.config.kind, payload, len(texts))
            with self._lock:
                self.stats.texts += len(texts)
                self.stats.batch_sizes.append(len(texts))
            return scores
        raise ServerUnavailable(
            f"{len(failures)} attempt(s) failed, the last: {failures[-1]}"
            + (f" (earlier: {'; '.join(dict.fromkeys(failures[:-1]))})" if len(failures) > 1 else "")
        )

    # -- many texts ------------------------------------------------------------------------------
    def score(self, texts: Sequence[str]) -> list[float]:
        """One raw score per text, in input order.

        Batches of ``batch_size`` go to a shared queue; each server gets ``concurrency`` worker threads that
        take the next batch, so a faster GPU takes more of them and no server has more than ``concurrency``
        requests of this call in flight (a retry fails over to the next server). The first error stops the
        call: remaining batches are dropped and the error is raised. Checks saturation on the whole result.
        """
        if not texts:
            return []
        size = self.config.batch_size
        batches: queue.SimpleQueue[tuple[int, Sequence[str]]] = queue.SimpleQueue()
        starts = list(range(0, len(texts), size))
        for start in starts:
            batches.put((start, texts[start : start + size]))
        out: list[float | None] = [None] * len(texts)
        errors: list[BaseException] = []
        stop = threading.Event()

        def worker(server: int) -> None:
            while not stop.is_set():
                try:
                    start, batch = batches.get_nowait()
                except queue.Empty:
                    return
                try:
                    out[start : start + len(batch)] = self.score_batch(batch, server)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(exc)
                    stop.set()
                    return

        n_threads = min(len(starts), self.config.concurrency * len(self.config.base_urls))
        if n_threads == 1:
            worker(0)
        else:
            threads = [
                threading.Thread(target=worker, args=(i % len(self.config.base_urls),), daemon=True)
                for i in range(n_threads)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        scores = [float(v) for v in out if v is not None]
        if len(scores) != len(texts):  # pragma: no cover - every batch either filled its slice or raised
            raise RemoteScoringError("some batches were not scored")
        check_not_saturated(self.config, scores)
        return scores


class _Attempt(Exception):
    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """The server's own message (vLLM: ``{"error": {"message"}}`` or ``{"message"}``; FastAPI: ``{"detail"}``)."""
    try:
        raw = exc.read()[:2000].decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - the body is a courtesy
        raw = ""
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.strip()[:300] or str(exc.reason)
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        for key in ("message", "detail", "error"):
            if payload.get(key):
                return str(payload[key])[:300]
    return raw.strip()[:300]
