"""Scoring servers: configure, test (ping) and attach external vLLM / SGLang servers to model versions.

Writes and reads of :class:`~rewardmodel.models.ScoringServer` live here, apart from the training and registry
services, because they are one noun with its own page; the HTTP client is :mod:`rewardmodel.remote` (pure).
The API key is write-only, as for the LLM judges: resolved only when a request is made, never logged or shown.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ValidationError
from django.db import transaction

from config.secrets import api_key_resolve
from rewardmodel import remote
from rewardmodel.models import ModelVersion, ScoringServer

logger = logging.getLogger(__name__)

#: A fixed pair for the ping, in the plain hh form (the web process loads no tokenizer; real scoring uses the
#: model's chat template, see ``rewardmodel.scoring``).
PING_PROMPT = "What is 2 + 2?"
PING_CHOSEN = "2 + 2 = 4."
PING_REJECTED = "2 + 2 = 5."
#: The ping runs inside a web request: one attempt per URL, at most this long each.
PING_TIMEOUT_S = 10.0


def scoring_server_api_key(server: ScoringServer) -> str:
    """The key: from its environment variable, else its file, else the stored value ("" for none).

    Raises ValidationError naming what is missing when a configured variable or file is not there.
    """
    return api_key_resolve(
        env=server.api_key_env, file=server.api_key_file, stored=server.api_key, what="the scoring server's key"
    )


def scoring_server_config(server: ScoringServer) -> remote.ServerConfig:
    """The server as the client sees it (key resolved now, kept nowhere else)."""
    return remote.ServerConfig(
        kind=server.kind,
        base_urls=tuple(server.url_list),
        model=server.served_model,
        api_key=scoring_server_api_key(server),
        batch_size=server.batch_size,
        concurrency=server.concurrency,
        timeout_s=server.timeout_s,
        max_retries=server.max_retries,
        check_saturation=server.check_saturation,
    )


def scoring_server_save(*, server: ScoringServer, api_key: str | None = None, clear_key: bool = False) -> ScoringServer:
    """Validate and save a server. ``api_key``: a new stored key (None or "" keeps the old one).

    Base URLs: one per line, http(s), the server root (``/classify`` is appended; a trailing ``/v1`` is refused
    because neither server mounts ``/classify`` under it). Raises ValidationError naming the line.
    """
    if clear_key:
        server.api_key = ""
    elif api_key:
        server.api_key = api_key.strip()
    urls = server.url_list
    if not urls:
        raise ValidationError({"base_urls": "give at least one base URL (one per GPU server)"})
    for line, url in enumerate(urls, start=1):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError({"base_urls": f"line {line}: {url!r} is not an http(s) URL"})
        if url.rstrip("/").endswith("/v1"):
            raise ValidationError(
                {"base_urls": f"line {line}: give the server root, without /v1 (/classify is served at the root)"}
            )
    if len(set(urls)) != len(urls):
        raise ValidationError({"base_urls": "a base URL is listed twice"})
    server.base_urls = "\n".join(u.rstrip("/") for u in urls)
    server.full_clean()
    with transaction.atomic():
        server.save()
    logger.info(
        "scoring server %s saved (%s, %d URL(s), key %s)",
        server.name,
        server.kind,
        len(urls),
        "set" if server.has_key else "not set",
    )
    return server


def scoring_server_delete(*, server: ScoringServer) -> None:
    """Delete a server; versions it was attached to go back to in-process scoring."""
    with transaction.atomic():
        server.delete()


def model_version_attach_server(*, version: ModelVersion, server: ScoringServer | None) -> ModelVersion:
    """Score ``version`` on ``server`` from now on (None: in-process again). Stored scores are kept."""
    with transaction.atomic():
        version.scoring_server = server
        version.save(update_fields=["scoring_server"])
    logger.info("model version %s scored by %s", version.name, server.name if server else "the worker (in-process)")
    return version


def scoring_server_ping(*, server: ScoringServer) -> dict[str, Any]:
    """Score one known pair on every base URL; report raw scores or the error, per URL.

    Returns ``{"ok": bool, "results": [{"url", "ok", "r_chosen", "r_rejected", "latency_ms", "error",
    "probabilities": bool}]}``. ``probabilities`` flags two scores both in [0, 1] (a server that probably
    applies a sigmoid; two values cannot prove it, the scoring check needs at least
    ``remote.SATURATION_MIN_VALUES``). One attempt per URL, no retries, at most ``PING_TIMEOUT_S`` each:
    the ping runs in a web request.
    """
    try:
        config = scoring_server_config(server)
    except (ValidationError, ValueError) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return {
            "ok": False,
            "results": [{"url": "", "ok": False, "error": message}],
            "prompt": PING_PROMPT,
            "chosen": PING_CHOSEN,
            "rejected": PING_REJECTED,
        }
    texts = [
        f"Human: {PING_PROMPT}\n\nAssistant: {PING_CHOSEN}",
        f"Human: {PING_PROMPT}\n\nAssistant: {PING_REJECTED}",
    ]
    results = []
    for url in config.base_urls:
        ping_config = dataclasses.replace(
            config,
            base_urls=(url,),
            max_retries=0,
            check_saturation=False,
            timeout_s=min(config.timeout_s, PING_TIMEOUT_S),
        )
        one = remote.RemoteScorer(ping_config)
        started = time.perf_counter()
        try:
            r_chosen, r_rejected = one.score(texts)
        except remote.RemoteScoringError as exc:
            results.append({"url": url, "ok": False, "error": str(exc)})
            continue
        results.append(
            {
                "url": url,
                "ok": True,
                "r_chosen": r_chosen,
                "r_rejected": r_rejected,
                "latency_ms": round((time.perf_counter() - started) * 1000),
                "probabilities": all(0.0 <= v <= 1.0 for v in (r_chosen, r_rejected)),
                "error": "",
            }
        )
    return {
        "ok": all(r["ok"] for r in results),
        "results": results,
        "prompt": PING_PROMPT,
        "chosen": PING_CHOSEN,
        "rejected": PING_REJECTED,
    }


def scoring_server_for(*, model_path: str = "", model_version_id: int | None = None) -> ScoringServer | None:
    """The server attached to a model version, found by id, else by its checkpoint path; None for in-process."""
    versions = ModelVersion.objects.exclude(scoring_server=None).select_related("scoring_server")
    if model_version_id is not None:
        version = versions.filter(pk=model_version_id).first()
    elif model_path:
        version = versions.filter(path=model_path).order_by("-created_at").first()
    else:
        version = None
    return version.scoring_server if version is not None else None
