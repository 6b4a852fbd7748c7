"""Query parsing and safe highlighting shared by the search backends (pure Python, no Django).

Snippets come back from the database with the matched words between two control characters
(``MARK_START`` / ``MARK_END``), never with HTML: the text is escaped first and only then are the
markers turned into ``<mark>`` tags, so a document (or a web result) cannot inject markup.
Loaded documents have these two characters removed, so they never occur naturally.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

MARK_START = "\x02"
MARK_END = "\x03"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"\w+", re.UNICODE)
_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')


def clean_text(text: str) -> str:
    """Remove control characters (including the highlight markers) but keep newlines and tabs."""
    return _CONTROL.sub("", text)


def marked_to_html(marked: str) -> str:
    """Escape ``marked`` and turn the highlight markers into ``<mark>`` tags (balanced)."""
    out: list[str] = []
    open_mark = False
    for part in re.split(f"([{MARK_START}{MARK_END}])", marked):
        if part == MARK_START:
            if not open_mark:
                out.append("<mark>")
                open_mark = True
        elif part == MARK_END:
            if open_mark:
                out.append("</mark>")
                open_mark = False
        else:
            out.append(html.escape(part, quote=False))
    if open_mark:
        out.append("</mark>")
    return "".join(out)


def strip_marks(marked: str) -> str:
    return marked.replace(MARK_START, "").replace(MARK_END, "")


@dataclass(frozen=True)
class ParsedQuery:
    """A web-search style query: words and "quoted phrases" must all match; -word excludes."""

    terms: tuple[str, ...]  # each a word or a phrase of words
    excluded: tuple[str, ...]

    @property
    def words(self) -> list[str]:
        return [w for term in self.terms for w in term.split()]

    def is_empty(self) -> bool:
        return not self.terms


def parse_query(query: str) -> ParsedQuery:
    terms: list[str] = []
    excluded: list[str] = []
    for neg, phrase, bare in _TOKEN.findall(query):
        negative = bool(neg) or bare.startswith("-")
        text = phrase if phrase or not bare else bare.lstrip("-")
        words = _WORD.findall(text)
        if not words:
            continue
        term = " ".join(words)  # "node.js" or a quoted phrase: its words in sequence
        if negative:
            excluded.append(term)
        elif term.lower() != "or":
            terms.append(term)
    return ParsedQuery(tuple(terms), tuple(excluded))


def _fts5_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts5_match(parsed: ParsedQuery, *, any_term: bool = False) -> str:
    """An FTS5 MATCH expression built only from quoted strings (no FTS5 syntax from the user)."""
    joiner = " OR " if any_term else " AND "
    expr = joiner.join(_fts5_string(t) for t in parsed.terms)
    if parsed.excluded and not any_term:
        expr = f"({expr})" + "".join(f" NOT {_fts5_string(t)}" for t in parsed.excluded)
    return expr


def pg_any_words(parsed: ParsedQuery) -> str:
    """A ``to_tsquery`` text matching any of the words (words only: nothing to inject)."""
    return " | ".join(dict.fromkeys(w.replace("'", "") for w in parsed.words if w.strip("_")))


def highlight_terms(text: str, words: list[str], *, max_chars: int = 320) -> str:
    """Escape ``text`` (cut near the first hit) and wrap whole-word hits of ``words`` in ``<mark>``.

    For backends that return plain snippets (web search).
    """
    text = clean_text(text)
    lowered = [w.lower() for w in words if w]
    if not lowered:
        return html.escape(text[:max_chars], quote=False)
    pattern = re.compile(
        r"\b(" + "|".join(re.escape(w) for w in sorted(set(lowered), key=len, reverse=True)) + r")\w*", re.I
    )
    first = pattern.search(text)
    start = max(0, first.start() - max_chars // 3) if first else 0
    excerpt = text[start : start + max_chars]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + max_chars < len(text) else ""
    marked = pattern.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_END}", excerpt)
    return marked_to_html(prefix + marked + suffix)
