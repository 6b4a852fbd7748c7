"""Fact-check search: corpus full-text search (SQLite FTS5 / PostgreSQL), corpus loading, SearxNG client."""

from __future__ import annotations

import gzip
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection

from annotation.tools import corpus as corpus_readers
from annotation.tools.highlight import fts5_match, marked_to_html, parse_query
from annotation.tools.models import Corpus, CorpusDocument, SearchQuery
from annotation.tools.search import corpus_search
from annotation.tools.searxng import WebSearchError, searxng_search
from annotation.tools.services import corpus_delete, corpus_load, search_run
from tests.annotation.tools.conftest import send_json

# --- query parsing and highlighting (pure) -----------------------------------------------------------


def test_query_syntax_of_a_search_box() -> None:
    parsed = parse_query('bit "bit bucket" -dev or node.js')
    assert parsed.terms == ("bit", "bit bucket", "node js")
    assert parsed.excluded == ("dev",)


def test_fts5_expression_is_built_only_from_quoted_strings() -> None:
    expr = fts5_match(parse_query('NEAR(a b) title:x * "un"closed'))
    assert expr == '"NEAR a" AND "b" AND "title x" AND "un" AND "closed"'
    assert fts5_match(parse_query("a b"), any_term=True) == '"a" OR "b"'


def test_snippet_markup_is_escaped_before_marks_are_added() -> None:
    assert marked_to_html("<b>\x02x\x03</b> & \x02y") == "&lt;b&gt;<mark>x</mark>&lt;/b&gt; &amp; <mark>y</mark>"


# --- corpus search ------------------------------------------------------------------------------------


def test_finds_and_ranks_real_documents_with_highlighted_snippets(jargon: Corpus) -> None:
    assert jargon.n_documents == 400
    outcome = corpus_search("cruft", limit=5)
    assert outcome.hits and not outcome.relaxed
    titles = [hit.title for hit in outcome.hits]
    assert titles[0] == "cruft", titles  # the entry itself ranks above entries citing it
    assert all("<mark>" in hit.snippet_html for hit in outcome.hits)
    assert [hit.rank for hit in outcome.hits] == list(range(1, len(outcome.hits) + 1))
    assert outcome.hits[0].corpus == "Jargon File (sample)"
    assert outcome.hits[0].url.startswith("http://www.catb.org/jargon/html/")


def test_every_word_must_match_else_any_word(jargon: Corpus) -> None:
    strict = corpus_search("hacker zyzzyvaqq", limit=5)
    assert strict.relaxed and strict.hits  # no document has the made-up word
    assert corpus_search("zyzzyvaqq", limit=5).hits == []


def test_excluded_words_and_phrases(jargon: Corpus) -> None:
    with_word = {h.document_id for h in corpus_search("program", limit=1000).hits}
    without = {h.document_id for h in corpus_search("program -bug", limit=1000).hits}
    assert without and without < with_word
    for doc in CorpusDocument.objects.filter(pk__in=without):
        assert not re.search(r"\bbugs?\b", f"{doc.title} {doc.text}", re.I)
    phrase = corpus_search('"bubble sort"', limit=1000).hits
    assert phrase and all(
        "bubble sort" in CorpusDocument.objects.get(pk=h.document_id).text.lower().replace("\n", " ")
        or h.title.lower() == "bubble sort"
        for h in phrase
    )


def test_document_markup_cannot_reach_the_page(db: Any) -> None:
    corpus_load(
        name="hostile",
        documents=[
            {
                "external_id": "1",
                "title": "<img src=x onerror=alert(1)>",
                "text": "<script>alert(1)</script> quokka facts",
                "source_url": "",
            }
        ],
    )
    (hit,) = corpus_search("quokka").hits
    # Whatever part of the text the database picks (PostgreSQL's headline may drop the tags),
    # no markup of the document survives as markup.
    assert "<script" not in hit.snippet_html and "<img" not in hit.snippet_html
    assert hit.snippet_html.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert "<mark>quokka</mark>" in hit.snippet_html


def test_index_follows_loads_replacements_and_deletes(db: Any) -> None:
    docs = [{"external_id": "a", "title": "Wombat", "text": "The wombat digs burrows.", "source_url": ""}]
    corpus = corpus_load(name="tiny", documents=docs)
    assert [h.title for h in corpus_search("burrows").hits] == ["Wombat"]
    with pytest.raises(Exception, match="already loaded"):
        corpus_load(name="tiny", documents=docs)
    corpus = corpus_load(name="tiny", documents=[{**docs[0], "text": "The wombat sleeps."}], replace=True)
    assert corpus_search("burrows").hits == [] and len(corpus_search("sleeps").hits) == 1
    corpus_delete(corpus=corpus)
    assert corpus_search("wombat").hits == []


def test_postgres_ranks_at_most_the_candidate_cap(require_postgres: None, jargon: Corpus, settings: Any) -> None:
    assert not corpus_search("program").capped
    settings.SEARCH_MAX_CANDIDATES = 5
    outcome = corpus_search("program", limit=10)
    assert outcome.capped and 0 < len(outcome.hits) <= 5


def test_postgres_search_uses_the_gin_index(require_postgres: None, jargon: Corpus) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM annotation_corpusdocument WHERE search_vector @@ websearch_to_tsquery('english', %s)",
            ["cruft"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "corpusdocument_search_gin" in plan


def test_search_run_records_what_the_annotator_saw(jargon: Corpus, claimed: Any, users: dict[str, Any]) -> None:
    search = search_run(pair=claimed.pair, user=users["alice"], query="  hacker   ethic ")
    assert search.query == "hacker ethic" and search.backend == "corpus"
    assert search.results and search.results[0]["rank"] == 1 and "<mark>" in search.results[0]["snippet_html"]
    assert SearchQuery.objects.filter(pair=claimed.pair, annotator=users["alice"]).count() == 1
    with pytest.raises(ValidationError):
        search_run(pair=claimed.pair, user=users["alice"], query="   ")
    with pytest.raises(ValidationError):
        search_run(pair=claimed.pair, user=users["alice"], query="x", backend="web")  # off by default


# --- loading corpora ----------------------------------------------------------------------------------


def _dictd(tmp_path: Path, entries: dict[str, str]) -> Path:
    """A dictd database as Debian ships them: base64-numbered index plus gzip data."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def b64(n: int) -> str:
        digits = ""
        while True:
            digits = alphabet[n % 64] + digits
            n //= 64
            if not n:
                return digits

    data, index = b"", []
    for head, body in [("00-database-info", "info"), *entries.items()]:
        chunk = f"{head}\n\n   {body}\n\n".encode()
        index.append(f"{head}\t{b64(len(data))}\t{b64(len(chunk))}")
        data += chunk
    base = tmp_path / "tiny"
    (tmp_path / "tiny.index").write_text("\n".join(index) + "\n")
    (tmp_path / "tiny.dict.dz").write_bytes(gzip.compress(data))
    return base


def test_reads_dictd_databases(tmp_path: Path) -> None:
    base = _dictd(tmp_path, {"foo": "A {metasyntactic variable}.\n   Second line.", "bar": "After foo."})
    docs = list(corpus_readers.read_dictd(base, url_template="https://foldoc.org/{term}"))
    assert [d["title"] for d in docs] == ["foo", "bar"]  # 00-database-* entries are metadata
    assert docs[0]["text"] == "A metasyntactic variable. Second line."
    assert docs[0]["source_url"] == "https://foldoc.org/foo"


def test_load_corpus_command_reads_json_lines_and_reports_bad_lines(tmp_path: Path, db: Any) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"title": "Numbat", "text": "A marsupial that eats termites.", "source_url": "https://example.org/n"}\n'
    )
    call_command("load_corpus", str(good), "--name", "animals", "--licence", "CC0")
    corpus = Corpus.objects.get(name="animals")
    assert (corpus.n_documents, corpus.licence) == (1, "CC0")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok", "text": "fine"}\n{"title": "", "text": "x"}\n')
    with pytest.raises(CommandError, match="line 2: 'title'"):
        call_command("load_corpus", str(bad), "--name", "broken")


def test_demo_loads_installed_debian_dictionaries(db: Any) -> None:
    if corpus_readers.debian_package_version("dict-jargon") is None:
        pytest.skip("dict-jargon is not installed (apt-get install dict-jargon)")
    call_command("load_corpus", "--debian-package", "dict-jargon")
    corpus = Corpus.objects.get(name="Jargon File")
    assert corpus.n_documents > 2000 and corpus.source.startswith("Debian package dict-jargon")
    assert corpus_search("hacker ethic").hits[0].title == "hacker ethic"


# --- web search (SearxNG JSON API) against a local HTTP server ----------------------------------------


SEARX_ANSWER = {
    "query": "wombat",
    "results": [
        {
            "url": "https://en.example.org/wiki/Wombat",
            "title": "Wombat",
            "content": "Wombats are <b>short-legged</b> marsupials.",
            "engine": "wikipedia",
        },
        {"url": "javascript:alert(1)", "title": "evil", "content": "wombat"},
        {
            "url": "https://zoo.example.org/w",
            "title": "Zoo",
            "content": "Our wombat eats grass.",
            "engine": "duckduckgo",
        },
    ],
}


def test_searxng_client_sends_a_json_query_and_keeps_only_http_links(http_server: Any) -> None:
    server = http_server(lambda request: send_json(request, SEARX_ANSWER))
    results = searxng_search(server.url, "wombat facts", limit=5, timeout=5)
    assert [r.title for r in results] == ["Wombat", "Zoo"]
    (request,) = server.requests
    assert (
        request["path"].startswith("/search?")
        and "format=json" in request["path"]
        and "q=wombat+facts" in request["path"]
    )


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (lambda r: send_json(r, {"error": "x"}, status=500), "HTTP 500"),
        (lambda r: send_json(r, {"no": "results"}), "not SearxNG JSON"),
    ],
)
def test_searxng_failures_are_reported(http_server: Any, handler: Any, message: str) -> None:
    server = http_server(handler)
    with pytest.raises(WebSearchError, match=message):
        searxng_search(server.url, "q", timeout=5)


def test_searxng_unreachable_or_slow(http_server: Any) -> None:
    with pytest.raises(WebSearchError, match="unreachable"):
        searxng_search("http://127.0.0.1:9", "q", timeout=2)

    def slow(request: BaseHTTPRequestHandler) -> None:
        import time

        time.sleep(1)
        send_json(request, SEARX_ANSWER)

    server = http_server(slow)
    with pytest.raises(WebSearchError):
        searxng_search(server.url, "q", timeout=0.3)


def test_web_backend_records_escaped_highlighted_results(
    http_server: Any, settings: Any, claimed: Any, users: dict[str, Any]
) -> None:
    server = http_server(lambda request: send_json(request, SEARX_ANSWER))
    settings.USE_WEB_SEARCH, settings.SEARXNG_URL = True, server.url
    search = search_run(pair=claimed.pair, user=users["alice"], query="wombat", backend="web")
    assert search.error == ""
    first = search.results[0]
    assert first["url"] == "https://en.example.org/wiki/Wombat"
    assert first["snippet_html"] == "<mark>Wombats</mark> are &lt;b&gt;short-legged&lt;/b&gt; marsupials."
    settings.SEARXNG_URL = "http://127.0.0.1:9"
    failed = search_run(pair=claimed.pair, user=users["alice"], query="wombat", backend="web")
    assert "unreachable" in failed.error and failed.results == []
