"""Rebuild wordnet-demo.jsonl: the WordNet 3.0 entries for the words of the demo pairs.

    apt-get install dict-wn && .venv/bin/python demo/corpus/make_wordnet.py

Reads Debian's dict-wn (``/usr/share/dictd/wn``; WordNet 3.0, Princeton University, a permissive
licence: see WORDNET-LICENSE) and keeps every entry whose headword is a word or a two-word phrase
of ``demo/pairs.jsonl`` (the conversations and both responses), except common function words.
Each sense goes on a line of its own ("noun 1: ...", "verb 2: ..."). Deterministic: the same
package and pairs give the same file.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from annotation.tools.corpus import DEBIAN_DICTIONARIES, DICTD_DIR, read_dictd  # noqa: E402

OUT = HERE / "wordnet-demo.jsonl"
PAIRS = ROOT / "demo" / "pairs.jsonl"
# Function words: their WordNet entries (the letter "a", the ampere...) never help a fact check.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
POS = {"n": "noun", "v": "verb", "adj": "adjective", "adv": "adverb"}
_WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
# A new sense starts at "n 1: " (a part of speech) or at "2: " not preceded by one.
_SENSE = re.compile(r"\s+(?=(?:n|v|adj|adv) \d{1,2}: )|(?<!\bn)(?<!\bv)(?<!\badj)(?<!\badv)\s+(?=\d{1,2}: )")


def pair_vocabulary(path: Path) -> set[str]:
    """Lower-cased words and two-word phrases of every pair's conversation and responses."""
    vocabulary: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            prompt = row["prompt"] if isinstance(row["prompt"], str) else json.dumps(row["prompt"])
            words = _WORD.findall(" ".join([prompt, row["chosen"], row["rejected"]]).lower())
            vocabulary.update(words)
            vocabulary.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return vocabulary - STOPWORDS


def senses(text: str) -> str:
    """One sense per line, with the part of speech spelled out."""
    lines = _SENSE.split(text.strip())
    out = []
    for line in lines:
        head, _, rest = line.partition(" ")
        out.append(f"{POS[head]} {rest}" if head in POS else line)
    return "\n".join(out)


def entries(vocabulary: set[str]) -> Iterator[dict[str, str]]:
    spec = DEBIAN_DICTIONARIES["dict-wn"]
    for doc in read_dictd(DICTD_DIR / spec.database, url_template=spec.url_template):
        if doc["title"].lower() in vocabulary:
            yield {
                "id": doc["title"],
                "title": doc["title"],
                "text": senses(doc["text"]),
                "source_url": doc["source_url"],
            }


def main() -> None:
    vocabulary = pair_vocabulary(PAIRS)
    seen: set[str] = set()
    n = 0
    with OUT.open("w", encoding="utf-8") as out:
        for row in entries(vocabulary):
            if row["id"] in seen:  # a headword listed twice in the index
                continue
            seen.add(row["id"])
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} WordNet entries for {len(vocabulary)} words and phrases of {PAIRS.name} to {OUT.name}")


if __name__ == "__main__":
    main()
