"""Readers for reference corpora (pure Python, no Django): JSON Lines files and dictd databases.

Each reader yields documents as dicts ``{"external_id", "title", "text", "source_url"}``.

Debian ships several reference works as dictd databases (``/usr/share/dictd/NAME.index`` plus
``NAME.dict.dz``, a gzip file): the index has one line per headword, ``headword TAB offset TAB
length``, the numbers in dictd's base64 digits. :data:`DEBIAN_DICTIONARIES` lists the ones we know
with their licences.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import textwrap
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from annotation.tools.highlight import clean_text

DICTD_DIR = Path("/usr/share/dictd")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {ch: i for i, ch in enumerate(_B64)}
MAX_TITLE = 500
MAX_TEXT = 200_000


class CorpusFormatError(ValueError):
    """A corpus file is malformed; the message names the line."""


@dataclass(frozen=True)
class DictSpec:
    package: str
    database: str
    name: str
    licence: str
    description: str
    url_template: str = ""  # "{term}" is replaced by the URL-quoted headword


DEBIAN_DICTIONARIES: dict[str, DictSpec] = {
    "dict-foldoc": DictSpec(
        "dict-foldoc",
        "foldoc",
        "FOLDOC",
        "GFDL-1.1-or-later (Copyright 1993 Denis Howe; see /usr/share/doc/dict-foldoc/copyright)",
        "The Free On-line Dictionary of Computing, http://www.foldoc.org/, Editor Denis Howe.",
        "https://foldoc.org/{term}",
    ),
    "dict-jargon": DictSpec(
        "dict-jargon",
        "jargon",
        "Jargon File",
        "Public domain (The Jargon File 4.4.7; see /usr/share/doc/dict-jargon/copyright)",
        "The on-line hacker Jargon File, version 4.4.7, 29 Dec 2003.",
        "http://www.catb.org/jargon/html/{initial}/{slug}.html",
    ),
    "dict-gcide": DictSpec(
        "dict-gcide",
        "gcide",
        "GCIDE",
        "GPL-2-or-later (see /usr/share/doc/dict-gcide/copyright)",
        "GNU Collaborative International Dictionary of English (includes Webster's 1913).",
        "dict://dict.org/d:{term}:gcide",
    ),
    "dict-wn": DictSpec(
        "dict-wn",
        "wn",
        "WordNet",
        "WordNet 3.0 licence (permissive; WordNet 3.0 Copyright 2006 by Princeton University; "
        "see /usr/share/doc/dict-wn/copyright)",
        "WordNet 3.0, a lexical database of English (Princeton University): senses, synonyms and examples.",
        "http://wordnetweb.princeton.edu/perl/webwn?s={term}",
    ),
}


def _b64_decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 64 + _B64_VALUE[ch]
    return value


def _reflow(body: str) -> str:
    """Dedent a dictd entry body and join the lines of each paragraph."""
    body = textwrap.dedent(body.strip("\n"))
    paragraphs = [" ".join(line.strip() for line in para.splitlines()) for para in re.split(r"\n\s*\n", body)]
    text = "\n\n".join(p for p in paragraphs if p)
    return re.sub(r"\{([^{}]{1,120})\}", r"\1", text)  # {cross reference} -> cross reference


def source_url(template: str, title: str) -> str:
    if not template:
        return ""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")
    initial = slug[:1].upper() if slug[:1].isalpha() else "0"
    return template.format(term=urllib.parse.quote(title), slug=slug, initial=initial)


def read_dictd(base: Path, *, url_template: str = "") -> Iterator[dict[str, str]]:
    """Documents of the dictd database ``base`` (path without .index / .dict.dz), one per entry.

    Several headwords may point at one entry; the entry is read once, titled by its own first line.
    """
    index = base.with_name(base.name + ".index")
    data_path = base.with_name(base.name + ".dict.dz")
    if not data_path.exists():
        data_path = base.with_name(base.name + ".dict")
    if not index.exists() or not data_path.exists():
        raise FileNotFoundError(f"no dictd database at {base} (.index and .dict.dz)")
    opener = gzip.open if data_path.suffix == ".dz" else open
    with opener(data_path, "rb") as handle:
        data = handle.read()
    seen: set[tuple[int, int]] = set()
    with index.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00-database") or parts[0].startswith("00database"):
                continue
            try:
                offset, length = _b64_decode(parts[1]), _b64_decode(parts[2])
            except KeyError:
                continue
            if (offset, length) in seen:
                continue
            seen.add((offset, length))
            raw = clean_text(data[offset : offset + length].decode("utf-8", "replace"))
            head, _, body = raw.lstrip("\n").partition("\n")
            title = head.strip() or parts[0]
            text = _reflow(body)
            if not text:
                continue
            yield {
                "external_id": f"{offset}:{length}",
                "title": title[:MAX_TITLE],
                "text": text[:MAX_TEXT],
                "source_url": source_url(url_template, title),
            }


def read_jsonl(path: Path) -> Iterator[dict[str, str]]:
    """Documents of a JSON Lines file: ``{"title", "text", "source_url"?, "id"?}`` per line.

    Raises :class:`CorpusFormatError` naming the first bad line.
    """
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusFormatError(f"line {number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise CorpusFormatError(f"line {number}: expected a JSON object")
            title, text = row.get("title"), row.get("text")
            if not isinstance(title, str) or not title.strip():
                raise CorpusFormatError(f"line {number}: 'title' must be a non-empty string")
            if not isinstance(text, str) or not text.strip():
                raise CorpusFormatError(f"line {number}: 'text' must be a non-empty string")
            url = row.get("source_url") or row.get("url") or ""
            if not isinstance(url, str):
                raise CorpusFormatError(f"line {number}: 'source_url' must be a string")
            external_id = row.get("id", row.get("external_id", number))
            yield {
                "external_id": str(external_id)[:300],
                "title": clean_text(title.strip())[:MAX_TITLE],
                "text": clean_text(text.strip())[:MAX_TEXT],
                "source_url": url.strip()[:1000],
            }


def debian_package_version(package: str) -> str | None:
    """The installed version of a Debian package, or None when it is not installed (or no dpkg)."""
    if shutil.which("dpkg-query") is None:
        return None
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}\t${Version}", package], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or "installed" not in done.stdout.split("\t")[0].split():
        return None
    return done.stdout.split("\t")[1] or None
