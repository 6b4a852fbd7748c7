"""Fixtures of the judge tests: a project with human-verified pairs, a stub judge server, the real small LLM."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from annotation.models import Annotation, Assignment, Pair
from curation.judges.models import Judge
from curation.models import VerifiedPair
from tests.annotation.tools.conftest import local_llm, send_json  # noqa: F401 (local_llm: a fixture re-exported)
from tests.factories import PairFactory


@pytest.fixture(autouse=True)
def _judge_settings(settings: Any) -> None:
    settings.JUDGE_RETRIEVER = "lexical"
    settings.JUDGE_HELDOUT_FRACTION = 0.25
    settings.JUDGE_SHARD_SIZE = 200


TOPICS = ["apples", "rivers", "python lists", "tax forms", "guitars", "volcanoes", "chess", "bread"]


def make_pair(project: Any, n: int, right: str = "A", topic: str | None = None) -> Pair:
    """A pair about a topic whose right response carries the word RIGHT (what the stub judge looks for)."""
    subject = topic or TOPICS[n % len(TOPICS)]
    good, bad = f"RIGHT answer {n} about {subject}.", f"wrong answer {n} about {subject}."
    pair = PairFactory.create(
        project=project,
        conversation=[{"role": "user", "content": f"Tell me about {subject}, question {n}."}],
        response_a=good if right == "A" else bad,
        response_b=bad if right == "A" else good,
        source_label=right,
    )
    return pair


def labelled_pair(project: Any, users: dict[str, Any], words: str, labels: list[dict[str, Any]]) -> Pair:
    """A pair whose conversation is ``words``, with one submitted label per entry of ``labels``."""
    pair = PairFactory.create(project=project, conversation=[{"role": "user", "content": words}])
    now = timezone.now()
    for annotator, values in zip(["alice", "bob", "carol"], labels, strict=False):
        assignment = Assignment.objects.create(
            project=project,
            pair=pair,
            annotator=users[annotator],
            status=Assignment.Status.SUBMITTED,
            order_shown="AB",
            submitted_at=now,
        )
        fields = {
            "task_category": "advice",
            "objectivity": "factual",
            "controversiality": "low",
            "desired_attributes": ["honesty"],
            "guideline": "",
            **values,
        }
        Annotation.objects.create(
            assignment=assignment,
            pair=pair,
            annotator=users[annotator],
            preference="A_CLEARLY",
            order_shown="AB",
            rationale="r",
            time_spent_ms=1,
            wall_time_ms=1,
            submitted_at=now,
            **fields,
        )
    Pair.objects.filter(pk=pair.pk).update(n_claimed=len(labels), n_submitted=len(labels))
    pair.refresh_from_db()
    return pair


def verify(pair: Pair, side: str, strength: str = "clearly") -> VerifiedPair:
    return VerifiedPair.objects.create(
        pair=pair,
        project=pair.project,
        batch_key="import:none",
        side=side,
        strength=strength,
        via=VerifiedPair.Via.MAJORITY,
        verified_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


_CANDIDATE = re.compile(r"## The pair to judge.*?### Candidate 1\n(.*?)\n\n### Candidate 2\n(.*?)\n\n", re.S)


def target_candidates(body: dict[str, Any]) -> tuple[str, str]:
    match = _CANDIDATE.search(body["messages"][-1]["content"])
    assert match, "the prompt has no target candidates"
    return match.group(1), match.group(2)


def content_judge(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    """A stub judge that reads the target and picks the candidate saying RIGHT (clearly)."""
    first, _second = target_candidates(body)
    answer = {"choice": "1" if "RIGHT" in first else "2", "strength": "clearly"}
    send_json(
        request,
        {
            "model": body["model"],
            "choices": [{"message": {"content": json.dumps(answer)}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 9},
        },
    )


def first_judge(request: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
    """A stub judge that always picks Candidate 1 (pure position bias)."""
    send_json(request, {"choices": [{"message": {"content": '{"choice": "1", "strength": "slightly"}'}}]})


class StubServer:
    """A threaded local HTTP server; ``handler(request, body)`` answers each POST. ``requests`` logs bodies."""

    def __init__(self, handler: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]) -> None:
        outer = self
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with outer.lock:
                    outer.requests.append({"headers": dict(self.headers), "body": body})
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    outer.handler(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    """Start stub judge servers; all are stopped after the test."""
    servers: list[StubServer] = []

    def start(handler: Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]) -> StubServer:
        servers.append(StubServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def make_judge(db: Any) -> Callable[..., Judge]:
    def make(url: str, **fields: Any) -> Judge:
        values = {"name": f"judge {Judge.objects.count() + 1}", "model": "stub-model", "response_format": "none"}
        return Judge.objects.create(base_url=url + "/v1", **{**values, **fields})

    return make
