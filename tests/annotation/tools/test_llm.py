"""AI assist: request forms, tolerant parsing, failures, and a real small model served locally."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from annotation.services import ServiceError
from annotation.tools import llm
from annotation.tools.models import AIQuery
from annotation.tools.services import ai_query_create, ai_query_run
from tests.annotation.tools.conftest import send_json


def _config(**overrides: Any) -> llm.LLMConfig:
    return llm.LLMConfig(**{"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout": 5.0, **overrides})


# --- pure parts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"answer": "B has a bug.", "verdict": "response_1"}', ("B has a bug.", "response_1")),
        ('Sure!\n```json\n{"answer": "Both fine", "verdict": "tie"}\n```', ("Both fine", "tie")),
        ('{"verdict": "2", "answer": "Response 2 cites a source"}', ("Response 2 cites a source", "response_2")),
        ('{"answer": "The first one is cut off because max_tok', ("The first one is cut off because max_tok", "")),
        ('{"answer": "quote \\"x\\" and more", "verdict": "left"', ('quote "x" and more', "response_1")),
        ("Response 1 is better because it is correct.", ("Response 1 is better because it is correct.", "")),
        ('{"answer": "ok", "verdict": "banana"}', ("ok", "")),
    ],
)
def test_answers_are_parsed_tolerantly(content: str, expected: tuple[str, str]) -> None:
    assert llm.parse_answer(content) == expected


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            "json_schema",
            {
                "type": "json_schema",
                "json_schema": {"name": "annotator_assist", "schema": llm.ANSWER_SCHEMA, "strict": True},
            },
        ),
        ("json_object_schema", {"type": "json_object", "schema": llm.ANSWER_SCHEMA}),
        ("json_object", {"type": "json_object"}),
        ("none", None),
    ],
)
def test_structured_output_form_is_configurable(form: str, expected: Any) -> None:
    body = llm.request_body(_config(response_format=form), [{"role": "user", "content": "q"}])
    assert body.get("response_format") == expected
    with pytest.raises(llm.LLMError, match="unknown LLM_RESPONSE_FORMAT"):
        llm.request_body(_config(response_format="xml"), [])


def test_prompt_numbers_the_responses_as_the_annotator_sees_them() -> None:
    messages = llm.build_messages([{"role": "user", "content": "Q?"}], "LEFT TEXT", "RIGHT TEXT", "Which is right?")
    user = messages[-1]["content"]
    assert user.index("Response 1 (shown on the left)\nLEFT TEXT") < user.index(
        "Response 2 (shown on the right)\nRIGHT TEXT"
    )
    assert "Which is right?" in user and "[user]\nQ?" in user


# --- failures, against local HTTP servers ---------------------------------------------------------------


def test_unset_configuration_is_refused_cleanly(claimed: Any, users: dict[str, Any]) -> None:
    with pytest.raises(ServiceError, match="not configured"):
        ai_query_create(pair=claimed.pair, user=users["alice"], question="Which is right?")
    with pytest.raises(llm.LLMNotConfigured):
        llm.chat(llm.LLMConfig(base_url="", model=""), [])


def test_timeout_is_reported(http_server: Any) -> None:
    def slow(request: BaseHTTPRequestHandler) -> None:
        time.sleep(1.5)
        send_json(request, {})

    server = http_server(slow)
    with pytest.raises(llm.LLMError, match="did not answer within 0.5 s"):
        llm.chat(_config(base_url=server.url, timeout=0.5), [{"role": "user", "content": "q"}])


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (
            lambda r: send_json(r, {"error": {"message": "model 'x' not found"}}, status=404),
            "HTTP 404: model 'x' not found",
        ),
        (lambda r: send_json(r, {"unexpected": True}), "not an OpenAI chat completion"),
        (lambda r: send_json(r, {"choices": [{"message": {"content": "  "}}]}), "empty answer"),
    ],
)
def test_server_errors_are_reported(http_server: Any, handler: Any, message: str) -> None:
    server = http_server(handler)
    with pytest.raises(llm.LLMError, match=message):
        llm.chat(_config(base_url=server.url), [{"role": "user", "content": "q"}])
    with pytest.raises(llm.LLMError, match="unreachable"):
        llm.chat(_config(base_url="http://127.0.0.1:9/v1"), [{"role": "user", "content": "q"}])


def test_request_carries_model_key_and_schema(
    http_server: Any, settings: Any, claimed: Any, users: dict[str, Any]
) -> None:
    """The hosted-API shape (the only place a model is faked): what we send and how the verdict maps back."""
    answer = {"answer": "Response 1 runs; response 2 has a typo.", "verdict": "response_1"}
    server = http_server(
        lambda r: send_json(r, {"model": "judge-1", "choices": [{"message": {"content": json.dumps(answer)}}]})
    )
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_API_KEY = server.url + "/v1", "judge-1", "sk-test"
    query = ai_query_create(pair=claimed.pair, user=users["alice"], question="Does the code run?")
    assert query.order_shown == "BA"  # alice sees B on the left
    done = ai_query_run(query_id=query.pk)
    assert done is not None and done.status == AIQuery.Status.DONE
    assert done.verdict == "B"  # response 1 = her left = canonical B
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = json.loads(request["body"])
    assert body["model"] == "judge-1" and body["response_format"]["type"] == "json_schema"
    prompt = body["messages"][-1]["content"]
    assert prompt.index(claimed.pair.response_b.strip()[:20]) < prompt.index(claimed.pair.response_a)  # her order
    assert ai_query_run(query_id=query.pk) is None  # claimed once


def test_a_failed_question_is_stored_with_the_reason(settings: Any, claimed: Any, users: dict[str, Any]) -> None:
    settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_TIMEOUT = "http://127.0.0.1:9/v1", "m", 2.0
    query = ai_query_create(pair=claimed.pair, user=users["alice"], question="Is it right?")
    done = ai_query_run(query_id=query.pk)
    assert done is not None and done.status == AIQuery.Status.FAILED and "unreachable" in done.error


# --- a real small model --------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_model_answers_through_transformers_serve(
    local_llm: tuple[str, str], settings: Any, claimed: Any, users: dict[str, Any]
) -> None:
    """SmolLM2-135M-Instruct via `transformers serve` (OpenAI-compatible): real plumbing end to end.

    The server ignores response_format, so this also proves the tolerant parser copes with a
    structured-output request the server did not honour.
    """
    base, model = local_llm
    settings.LLM_BASE_URL, settings.LLM_MODEL = base, model
    settings.LLM_RESPONSE_FORMAT, settings.LLM_MAX_TOKENS, settings.LLM_TIMEOUT = "json_schema", 48, 120.0
    query = ai_query_create(pair=claimed.pair, user=users["alice"], question="Does the Python code in response 1 run?")
    done = ai_query_run(query_id=query.pk)
    assert done is not None
    assert done.status == AIQuery.Status.DONE, done.error
    assert done.answer.strip() and done.raw_response.strip()
    assert done.verdict in {"", "A", "B", "tie", "unsure"}
    assert done.latency_ms and done.latency_ms > 0


@pytest.mark.slow
def test_real_server_answers_a_factual_question(local_llm: tuple[str, str]) -> None:
    """The model really runs: a plain question gets the known answer, with the model named as asked."""
    base, model = local_llm
    config = llm.LLMConfig(base_url=base, model=model, response_format="none", timeout=120, max_tokens=16)
    answer = llm.chat(config, [{"role": "user", "content": "What is the capital of France? One word."}])
    assert "paris" in answer.answer.lower()
    assert answer.latency_ms > 0


@pytest.mark.slow
def test_real_server_rejects_an_unknown_model_with_a_clear_error(local_llm: tuple[str, str]) -> None:
    base, _ = local_llm
    config = llm.LLMConfig(base_url=base, model="no-such-model", response_format="none", timeout=60, max_tokens=8)
    with pytest.raises(llm.LLMError, match="HTTP 400"):
        llm.chat(config, [{"role": "user", "content": "2+2?"}])
