"""A judge LLM behind an OpenAI-compatible chat-completions API (pure Python, no Django).

The structured-output request differs between servers, so it is configurable
(``response_format``):

- ``json_schema``: ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``
  (OpenAI, vLLM, llama.cpp's llama-server);
- ``json_object_schema``: ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's server,
  which rejects ``json_schema``);
- ``json_object``: plain JSON mode, ``{"type": "json_object"}``;
- ``none``: no ``response_format``; the prompt still asks for JSON (``transformers serve``
  ignores ``response_format`` altogether, so ``none`` is the honest choice there).

Whatever comes back is parsed tolerantly (:func:`parse_answer`): strict JSON, JSON inside text or
a code fence, a truncated JSON object, or plain prose (then there is no verdict).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

RESPONSE_FORMATS = ("json_schema", "json_object_schema", "json_object", "none")
VERDICTS = ("response_1", "response_2", "tie", "unsure")

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "verdict": {"type": "string", "enum": list(VERDICTS)},
    },
    "required": ["answer", "verdict"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You help a human annotator compare two AI assistant responses to the same conversation. "
    "Answer the annotator's question about the two responses accurately and briefly, pointing out "
    "factual errors, bugs or safety problems you notice. The human makes the final decision. "
    'Reply with a JSON object: {"answer": "<your answer>", "verdict": "response_1" | "response_2" | '
    '"tie" | "unsure"}, where verdict says which response is better overall, if you can tell.'
)


class LLMError(Exception):
    """The LLM could not answer; the message is meant for the annotator.

    ``status``: the HTTP status when the server answered with an error (None otherwise);
    ``retry_after``: seconds from a ``Retry-After`` header (429/503), when one was sent;
    ``transient``: worth retrying (rate limit, 5xx, timeout, unreachable), as opposed to a bad
    request, a wrong model or an answer that is not a chat completion.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.transient = transient


class LLMNotConfigured(LLMError):
    pass


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str = ""
    response_format: str = "json_schema"
    timeout: float = 60.0
    max_tokens: int = 512
    temperature: float = 0.0

    @property
    def is_configured(self) -> bool:
        return bool(self.base_url and self.model)


@dataclass
class LLMAnswer:
    answer: str
    verdict: str  # one of VERDICTS, or "" when the model gave none we could read
    raw: str
    model: str
    latency_ms: int


def build_messages(
    conversation: list[dict[str, str]], response_1: str, response_2: str, question: str
) -> list[dict[str, str]]:
    """The chat messages for one question. Responses are numbered in the order the annotator saw them."""
    transcript = "\n\n".join(f"[{m.get('role', 'user')}]\n{m.get('content', '')}" for m in conversation)
    user = (
        f"## Conversation\n{transcript}\n\n"
        f"## Response 1 (shown on the left)\n{response_1}\n\n"
        f"## Response 2 (shown on the right)\n{response_2}\n\n"
        f"## The annotator's question\n{question}\n\n"
        'Reply with JSON only: {"answer": "...", "verdict": "response_1" | "response_2" | "tie" | "unsure"}'
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def request_body(config: LLMConfig, messages: list[dict[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": config.model,
        "messages": messages,
        "temperature": config.temperature,
        "max_tokens": config.max_tokens,
    }
    response_format = response_format_field(config.response_format, "annotator_assist", ANSWER_SCHEMA)
    if response_format is not None:
        body["response_format"] = response_format
    return body


def response_format_field(form: str, name: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` value asking for JSON matching ``schema`` in the server's dialect (None: omit it)."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if form == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if form == "json_object":
        return {"type": "json_object"}
    if form != "none":
        raise LLMError(f"unknown LLM_RESPONSE_FORMAT {form!r}; use one of {', '.join(RESPONSE_FORMATS)}")
    return None


def chat(config: LLMConfig, messages: list[dict[str, str]]) -> LLMAnswer:
    """Send ``messages``; return the parsed answer. Raises LLMNotConfigured / LLMError."""
    if not config.is_configured:
        raise LLMNotConfigured("AI assist is not configured on this server (LLM_BASE_URL and LLM_MODEL are unset).")
    payload, latency_ms = post_chat(config, request_body(config, messages))
    content = completion_content(payload)
    answer, verdict = parse_answer(content)
    if not answer.strip():
        raise LLMError("the AI model returned an empty answer")
    return LLMAnswer(
        answer=answer,
        verdict=verdict,
        raw=content,
        model=str(payload.get("model") or config.model),
        latency_ms=latency_ms,
    )


def post_chat(config: LLMConfig, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """POST ``body`` to ``<base_url>/chat/completions``; return (the decoded JSON reply, latency in ms).

    Raises LLMError with ``status``, ``retry_after`` and ``transient`` set so callers can retry.
    """
    url = config.base_url.rstrip("/") + "/chat/completions"
    data = json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=config.timeout) as response:  # noqa: S310 (admin-configured URL)
            raw = response.read(4 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        detail = _error_detail(exc)
        raise LLMError(
            f"the AI service answered HTTP {exc.code}{': ' + detail if detail else ''}",
            status=exc.code,
            retry_after=_retry_after(exc.headers.get("Retry-After") if exc.headers else None),
            transient=exc.code in (408, 409, 425, 429) or exc.code >= 500,
        ) from exc
    except TimeoutError as exc:
        raise LLMError(f"the AI service did not answer within {config.timeout:g} s", transient=True) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise LLMError(f"the AI service did not answer within {config.timeout:g} s", transient=True) from exc
        raise LLMError(f"the AI service is unreachable: {exc.reason}", transient=True) from exc
    except OSError as exc:  # a connection reset or a server that died mid-answer
        raise LLMError(f"the AI service is unreachable: {exc}", transient=True) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    try:
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise LLMError("the AI service sent an answer that is not an OpenAI chat completion") from exc
    return payload, latency_ms


def completion_content(payload: dict[str, Any]) -> str:
    """The first choice's message text of a chat completion; LLMError if it is not one."""
    try:
        choice = payload["choices"][0]
        return str(choice["message"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LLMError("the AI service sent an answer that is not an OpenAI chat completion") from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(2000).decode("utf-8", "replace")
        data = json.loads(text)
        # OpenAI-style servers answer {"error": {"message": ...}}; FastAPI ones ({"detail": ...}).
        message = data.get("error") or data.get("detail") or ""
        if isinstance(message, dict):
            return str(message.get("message", ""))[:300]
        return str(message)[:300]
    except Exception:
        return ""


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_ANSWER_FIELD = re.compile(r'"answer"\s*:\s*"((?:[^"\\]|\\.)*)', re.S)
_VERDICT_FIELD = re.compile(r'"verdict"\s*:\s*"([^"]*)"')
_VERDICT_ALIASES = {
    "1": "response_1",
    "response 1": "response_1",
    "a": "response_1",
    "left": "response_1",
    "2": "response_2",
    "response 2": "response_2",
    "b": "response_2",
    "right": "response_2",
    "equal": "tie",
    "both": "tie",
    "unknown": "unsure",
    "none": "unsure",
}


def normalise_verdict(value: Any) -> str:
    text = str(value or "").strip().lower().replace("-", "_")
    if text in VERDICTS:
        return text
    return _VERDICT_ALIASES.get(text.replace("_", " "), "")


def json_objects(text: str) -> list[dict[str, Any]]:
    """JSON objects found in a model's text: the whole text, each code fence, the outermost braces, in that order."""
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    found: list[dict[str, Any]] = []
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def parse_answer(content: str) -> tuple[str, str]:
    """(answer text, verdict) from whatever the model wrote; verdict "" when unreadable."""
    text = content.strip()
    for data in json_objects(text):
        if "answer" in data or "verdict" in data:
            answer = data.get("answer")
            answer_text = (
                answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False) if answer else ""
            )
            return answer_text.strip(), normalise_verdict(data.get("verdict"))
    # A JSON object cut off by max_tokens, or JSON-ish text: pick the fields out.
    answer_match = _ANSWER_FIELD.search(text)
    verdict_match = _VERDICT_FIELD.search(text)
    if answer_match:
        raw = answer_match.group(1)
        try:  # a cut-off escape at the very end would make it invalid
            answer_text = json.loads('"' + raw.rstrip("\\") + '"')
        except ValueError:
            answer_text = raw
        return answer_text.strip(), normalise_verdict(verdict_match.group(1) if verdict_match else "")
    return text, normalise_verdict(verdict_match.group(1)) if verdict_match else ""
