"""Fact-check search backends: full-text search over the loaded corpora, and web search (SearxNG).

Corpus search runs in the database: PostgreSQL full-text search (a stored, GIN-indexed tsvector
column; ``websearch_to_tsquery``; ``ts_rank_cd``; ``ts_headline``) or SQLite FTS5 (``bm25``,
``snippet``). Both read a query the same way (see :func:`annotation.tools.highlight.parse_query`):
every word and "quoted phrase" must match, ``-word`` excludes. When nothing has every word, the
search is repeated matching any word and says so (``relaxed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection

from annotation.tools.highlight import (
    MARK_END,
    MARK_START,
    ParsedQuery,
    fts5_match,
    highlight_terms,
    marked_to_html,
    parse_query,
    pg_any_words,
)
from annotation.tools.searxng import WebSearchError, searxng_search

__all__ = ["Hit", "SearchOutcome", "WebSearchError", "corpus_search", "web_search", "available_backends"]


@dataclass
class Hit:
    rank: int
    title: str
    url: str
    snippet_html: str  # escaped text with <mark> tags: safe to render as is
    document_id: int | None = None
    corpus: str = ""
    score: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SearchOutcome:
    hits: list[Hit]
    relaxed: bool = False  # no document had every word: these match any word
    capped: bool = False  # more documents matched than were ranked (SEARCH_MAX_CANDIDATES)


def available_backends() -> list[str]:
    """Backends the panel offers: the corpus always, the web when an admin switched it on."""
    backends = ["corpus"]
    if settings.USE_WEB_SEARCH and settings.SEARXNG_URL:
        backends.append("web")
    return backends


def corpus_search(query: str, *, limit: int = 10, corpus_ids: Sequence[int] | None = None) -> SearchOutcome:
    """Ranked corpus documents for ``query`` with highlighted snippets (best first)."""
    parsed = parse_query(query)
    if parsed.is_empty():
        return SearchOutcome([])
    run = _pg_search if connection.vendor == "postgresql" else _sqlite_search
    outcome = run(parsed, limit=limit, corpus_ids=corpus_ids, any_term=False)
    if outcome.hits or len(parsed.words) < 2:
        return outcome
    relaxed = run(parsed, limit=limit, corpus_ids=corpus_ids, any_term=True)
    relaxed.relaxed = True
    return relaxed


def _websearch_text(parsed: ParsedQuery) -> str:
    parts = [f'"{t}"' if " " in t else t for t in parsed.terms]
    parts += [f'-"{t}"' if " " in t else f"-{t}" for t in parsed.excluded]
    return " ".join(parts)


def _pg_search(parsed: ParsedQuery, *, limit: int, corpus_ids: Sequence[int] | None, any_term: bool) -> SearchOutcome:
    if any_term:
        tsquery_sql, param = "to_tsquery('english', %s)", pg_any_words(parsed)
    else:
        tsquery_sql, param = "websearch_to_tsquery('english', %s)", _websearch_text(parsed)
    if not param.strip():
        return SearchOutcome([])
    corpus_filter = "AND d.corpus_id = ANY(%s)" if corpus_ids else ""
    options = (
        f'StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=35, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "'
    )
    # Matching rows come from the GIN index. Ranking reads every candidate's tsvector, so a word
    # found in most of the corpus would rank 100,000 rows: rank at most SEARCH_MAX_CANDIDATES of
    # them (the outcome says so). Headlines re-parse the whole text, so only the top ``limit``
    # get one.
    sql = f"""
        WITH q AS (SELECT {tsquery_sql} AS query),
        candidates AS (
            SELECT d.id, d.search_vector
            FROM annotation_corpusdocument d, q
            WHERE d.search_vector @@ q.query {corpus_filter}
            LIMIT %s
        ),
        top AS (
            SELECT c.id, ts_rank_cd(c.search_vector, q.query, 1) AS score
            FROM candidates c, q
            ORDER BY score DESC, c.id
            LIMIT %s
        )
        SELECT d.id, d.title, d.source_url, co.name, top.score,
               ts_headline('english', d.text, q.query, %s),
               (SELECT count(*) FROM candidates)
        FROM top
        JOIN annotation_corpusdocument d ON d.id = top.id
        JOIN annotation_corpus co ON co.id = d.corpus_id, q
        ORDER BY top.score DESC, d.id
    """
    cap = settings.SEARCH_MAX_CANDIDATES
    params: list = [param]
    if corpus_ids:
        params.append(list(corpus_ids))
    params += [cap, limit, options]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = [
        Hit(
            rank=i + 1,
            title=title,
            url=url,
            snippet_html=marked_to_html(snippet),
            document_id=pk,
            corpus=corpus,
            score=float(score),
        )
        for i, (pk, title, url, corpus, score, snippet, _n) in enumerate(rows)
    ]
    return SearchOutcome(hits, capped=bool(rows) and rows[0][6] >= cap)


def _sqlite_search(
    parsed: ParsedQuery, *, limit: int, corpus_ids: Sequence[int] | None, any_term: bool
) -> SearchOutcome:
    match = fts5_match(parsed, any_term=any_term)
    corpus_filter = ""
    params: list = [match]
    if corpus_ids:
        corpus_filter = f"AND d.corpus_id IN ({', '.join('%s' for _ in corpus_ids)})"
        params += list(corpus_ids)
    params.append(limit)
    # bm25 weights: a hit in the title counts five times one in the text. Lower bm25 is better.
    sql = f"""
        SELECT d.id, d.title, d.source_url, c.name, bm25(annotation_corpusdocument_fts, 5.0, 1.0) AS score,
               snippet(annotation_corpusdocument_fts, 1, char(2), char(3), ' … ', 32)
        FROM annotation_corpusdocument_fts
        JOIN annotation_corpusdocument d ON d.id = annotation_corpusdocument_fts.rowid
        JOIN annotation_corpus c ON c.id = d.corpus_id
        WHERE annotation_corpusdocument_fts MATCH %s {corpus_filter}
        ORDER BY score, d.id
        LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    hits = [
        Hit(
            rank=i + 1,
            title=title,
            url=url,
            snippet_html=marked_to_html(snippet),
            document_id=pk,
            corpus=corpus,
            score=-float(score),
        )
        for i, (pk, title, url, corpus, score, snippet) in enumerate(rows)
    ]
    return SearchOutcome(hits)


def web_search(query: str, *, limit: int = 10) -> SearchOutcome:
    """Results from the configured SearxNG instance. Raises WebSearchError."""
    parsed = parse_query(query)
    results = searxng_search(settings.SEARXNG_URL, query, limit=limit, timeout=settings.SEARXNG_TIMEOUT)
    return SearchOutcome(
        [
            Hit(
                rank=i + 1,
                title=r.title,
                url=r.url,
                snippet_html=highlight_terms(r.content, parsed.words),
                corpus=r.engine,
            )
            for i, r in enumerate(results)
        ]
    )
