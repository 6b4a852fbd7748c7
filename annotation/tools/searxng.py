"""Client for a SearxNG instance's JSON API (pure Python, no Django).

``GET {base}/search?q=...&format=json`` answers ``{"results": [{"url", "title", "content", ...}]}``
(the instance must list ``json`` under ``search.formats`` in its settings.yml).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


class WebSearchError(Exception):
    """The web search failed; the message is meant for the annotator."""


@dataclass(frozen=True)
class WebResult:
    title: str
    url: str
    content: str
    engine: str


def searxng_search(
    base_url: str, query: str, *, limit: int = 10, timeout: float = 8.0, language: str = ""
) -> list[WebResult]:
    """Up to ``limit`` results for ``query``. Raises :class:`WebSearchError` on any failure."""
    if not base_url:
        raise WebSearchError("web search is not configured (SEARXNG_URL is empty)")
    params = {"q": query, "format": "json", "pageno": "1", "safesearch": "1"}
    if language:
        params["language"] = language
    url = base_url.rstrip("/") + "/search?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "SynPref-Studio"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (admin-configured URL)
            body = response.read(5 * 1024 * 1024)
    except urllib.error.HTTPError as exc:
        raise WebSearchError(f"web search answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WebSearchError(f"web search is unreachable: {reason}") from exc
    try:
        payload = json.loads(body)
        raw = payload["results"]
        if not isinstance(raw, list):
            raise TypeError("results is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise WebSearchError("web search sent an answer that is not SearxNG JSON") from exc
    results: list[WebResult] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        url = str(item.get("url") or "")
        if not url.startswith(("http://", "https://")):
            continue  # never render javascript: or data: links
        results.append(
            WebResult(
                title=str(item.get("title") or url)[:500],
                url=url[:1000],
                content=str(item.get("content") or "")[:2000],
                engine=str(item.get("engine") or ""),
            )
        )
        if len(results) >= limit:
            break
    return results
