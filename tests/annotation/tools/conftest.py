"""Fixtures of the annotator-tools tests: a claimed pair, a loaded corpus, local HTTP servers, a real LLM."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from annotation.models import Assignment, Pair
from annotation.tools import sandbox
from annotation.tools.corpus import read_jsonl
from annotation.tools.services import corpus_load
from tests.conftest import REQUIRE_SERVICES

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "demo" / "corpus" / "jargon-sample.jsonl"

CODE_RESPONSE = """Here is a function:

```python
def add(a, b):
    return a + b

print(add(2, 3))
```
"""


@pytest.fixture(autouse=True)
def _tools_settings(settings: Any) -> None:
    settings.SANDBOX_MODE = sandbox.MODE_BWRAP
    settings.SANDBOX_CPU_SECONDS = 2
    settings.SANDBOX_WALL_SECONDS = 4
    settings.SANDBOX_MEMORY_MB = 256
    settings.SANDBOX_MAX_PROCESSES = 32
    settings.SANDBOX_DISK_MB = 8
    settings.SANDBOX_OUTPUT_BYTES = 16 * 1024
    settings.LLM_BASE_URL = ""
    settings.LLM_MODEL = ""
    settings.USE_WEB_SEARCH = False
    settings.SEARXNG_URL = ""


@pytest.fixture
def require_sandbox() -> None:
    """Skip (or, in CI, fail) when bubblewrap cannot build a sandbox on this machine."""
    problem = sandbox.sandbox_problem(sandbox.MODE_BWRAP)
    if problem:
        if REQUIRE_SERVICES:
            pytest.fail(f"the sandbox must work in CI: {problem}")
        pytest.skip(problem)


def claim(pair: Pair, user: Any, order: str = "AB") -> Assignment:
    """Give ``user`` a live claim on ``pair`` (as assignment_claim_next would)."""
    now = timezone.now()
    Pair.objects.filter(pk=pair.pk).update(n_claimed=pair.n_claimed + 1)
    return Assignment.objects.create(
        project=pair.project,
        pair=pair,
        annotator=user,
        order_shown=order,
        claimed_at=now,
        expires_at=now + timedelta(minutes=30),
    )


@pytest.fixture
def code_pair(project: Any) -> Pair:
    """A pair whose response B holds a Python code block."""
    return Pair.objects.create(
        project=project,
        conversation=[{"role": "user", "content": "Write a Python function that adds two numbers."}],
        response_a="Just use the + operator.",
        response_b=CODE_RESPONSE,
        content_hash="code-pair",
    )


@pytest.fixture
def claimed(code_pair: Pair, users: dict[str, Any]) -> Assignment:
    """alice holds a claim on ``code_pair``, shown B on the left."""
    return claim(code_pair, users["alice"], order="BA")


@pytest.fixture
def jargon(db: Any) -> Any:
    """The shipped demo corpus: 400 real Jargon File entries (public domain)."""
    return corpus_load(name="Jargon File (sample)", documents=read_jsonl(SAMPLE), licence="Public domain")


# --- local HTTP servers ----------------------------------------------------------------------------------


class _Server:
    def __init__(self, handler: Callable[[BaseHTTPRequestHandler], None]) -> None:
        outer = self
        self.requests: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    handler(self)

            do_GET = _handle  # noqa: N815
            do_POST = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[Callable[[Callable[[BaseHTTPRequestHandler], None]], _Server]]:
    """Start local HTTP servers answering with the given handler; all are stopped after the test."""
    servers: list[_Server] = []

    def start(handler: Callable[[BaseHTTPRequestHandler], None]) -> _Server:
        server = _Server(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def send_json(request: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


# --- a real small LLM: SmolLM2-135M-Instruct behind `transformers serve` (devtools/local_llm.py) -----------


@pytest.fixture(scope="session")
def local_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL …/v1, model name) of a local OpenAI-compatible server running SmolLM2-135M-Instruct offline.

    Skipped when the dev packages are missing (`make install-dev`), except in CI (REQUIRE_SERVICES=1).
    The converted checkpoint is cached under VAR_DIR/llm, so only the first run converts the GGUF.
    """
    from devtools import local_llm

    missing = local_llm.missing_requirements()
    if missing:
        message = "needs " + "; ".join(missing)
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    model_dir = local_llm.prepare()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with local_llm.running_server(model_dir, log_path=log) as base:
        yield base, local_llm.model_name(model_dir)
