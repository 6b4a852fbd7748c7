"""A stand-in scoring server speaking vLLM's and SGLang's ``/classify`` formats, for tests, the bench and demos.

No GPU server can run here, so this is what the client is tested against. It implements the request and response
bodies exactly as :mod:`rewardmodel.remote` documents them (vLLM ``ClassificationCompletionRequest`` /
``ClassificationResponse``; SGLang ``EmbeddingReqInput`` -> a list of ``{"embedding", "meta_info"}``), including the
pitfall: vLLM applies a sigmoid unless ``use_activation`` is false. The "reward" of a text is a deterministic raw
logit in [-8, 8] from its SHA-256 (:func:`stub_logit`), so a caller can check every score and its order.

Failure injection: ``server.fail_next([(503, {}), (429, {"Retry-After": "2"})])`` answers the next requests with
those statuses; ``delay_s`` makes every answer late; ``ignore_use_activation`` (vLLM) / ``sigmoid`` (SGLang)
return probabilities as a misconfigured server would; ``api_key`` requires ``Authorization: Bearer <key>``.

Run one by hand: ``python -m devtools.scoring_stub --kind vllm --port 8000 --model rm``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def stub_logit(text: str) -> float:
    """The stub's raw reward of a text: a deterministic value in [-8, 8]."""
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return round(h / 2**64 * 16.0 - 8.0, 6)


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default backlog (5) refuses connections when many requests are in flight

    def __init__(
        self,
        kind: str = "vllm",
        *,
        model: str = "rm",
        port: int = 0,
        api_key: str = "",
        delay_s: float = 0.0,
        ignore_use_activation: bool = False,
        sigmoid: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.kind = kind
        self.model = model
        self.api_key = api_key
        self.delay_s = delay_s
        self.ignore_use_activation = ignore_use_activation
        self.sigmoid = sigmoid
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # every request body that reached /classify
        self.headers_seen: list[dict[str, str]] = []
        self._failures: list[tuple[int, dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and hung up: nothing to report

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail_next(self, failures: list[tuple[int, dict[str, str]]]) -> None:
        with self.lock:
            self._failures.extend(failures)

    def batch_sizes(self) -> list[int]:
        key = "input" if self.kind == "vllm" else "text"
        with self.lock:
            return [len(r[key]) for r in self.requests if isinstance(r.get(key), list)]

    def texts(self) -> list[str]:
        key = "input" if self.kind == "vllm" else "text"
        with self.lock:
            return [t for r in self.requests for t in r.get(key, [])]

    def start(self) -> StubServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: StubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/classify":
            self._send(404, {"detail": "Not Found"})  # FastAPI's answer to an unknown route
            return
        with srv.lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._classify(raw)
        finally:
            with srv.lock:
                srv.in_flight -= 1

    def _classify(self, raw: bytes) -> None:
        srv = self.server
        if srv.delay_s:
            time.sleep(srv.delay_s)
        with srv.lock:
            srv.headers_seen.append(dict(self.headers.items()))
            failure = srv._failures.pop(0) if srv._failures else None
        if srv.api_key and self.headers.get("Authorization") != f"Bearer {srv.api_key}":
            self._send(401, {"error": "Unauthorized"})  # vLLM's --api-key middleware
            return
        if failure is not None:
            status, headers = failure
            self._send(status, {"error": {"message": f"injected {status}", "type": "Stub", "code": status}}, headers)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON", "type": "BadRequestError", "code": 400}})
            return
        with srv.lock:
            srv.requests.append(body)
        if srv.kind == "vllm":
            self._vllm(body)
        else:
            self._sglang(body)

    def _vllm(self, body: dict[str, Any]) -> None:
        srv = self.server
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._send(400, {"error": {"message": "input: a string or a list of strings", "code": 400}})
            return
        if body.get("model") not in (None, srv.model):
            message = f"The model `{body.get('model')}` does not exist."
            self._send(404, {"error": {"message": message, "type": "NotFoundError", "code": 404}})
            return
        # vLLM's default for a one-label classifier is a sigmoid; use_activation=false turns it off.
        activate = srv.ignore_use_activation or body.get("use_activation") is not False
        data = []
        for i, text in enumerate(texts):
            value = stub_logit(text)
            if activate:
                value = 1.0 / (1.0 + math.exp(-value))
            data.append({"index": i, "label": "LABEL_0", "probs": [value], "num_classes": 1})
        n_tokens = sum(len(t.split()) for t in texts)
        self._send(
            200,
            {
                "id": f"classify-{uuid.uuid4().hex}",
                "object": "list",
                "created": int(time.time()),
                "model": srv.model,
                "data": data,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens, "completion_tokens": 0},
            },
        )

    def _sglang(self, body: dict[str, Any]) -> None:
        srv = self.server
        texts = body.get("text")
        single = isinstance(texts, str)
        if single:
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self._send(400, {"object": "error", "message": "Either text or input_ids should be provided.", "code": 400})
            return
        out = []
        for text in texts:
            value = stub_logit(text)
            if srv.sigmoid:
                value = 1.0 / (1.0 + math.exp(-value))
            out.append(
                {
                    "embedding": [value],
                    "meta_info": {"id": uuid.uuid4().hex, "prompt_tokens": len(text.split()), "e2e_latency": 0.0},
                }
            )
        self._send(200, out[0] if single else out)


def main() -> None:
    parser = argparse.ArgumentParser(description="A stub vLLM / SGLang /classify server (deterministic raw logits).")
    parser.add_argument("--kind", choices=["vllm", "sglang"], default="vllm")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="rm")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()
    server = StubServer(args.kind, model=args.model, port=args.port, api_key=args.api_key)
    print(f"{args.kind} stub on {server.url} (model {args.model!r}); Ctrl+C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
