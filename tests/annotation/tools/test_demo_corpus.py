"""The demo corpus fits the demo pairs: WordNet entries, loaded by ``load_corpus --demo``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from annotation.tools.corpus import read_jsonl
from annotation.tools.models import Corpus
from annotation.tools.search import corpus_search

ROOT = Path(__file__).resolve().parents[3]
DEMO_CORPUS = ROOT / "demo" / "corpus" / "wordnet-demo.jsonl"
DEMO_PAIRS = ROOT / "demo" / "pairs.jsonl"
# Words of everyday conversation that the demo pairs use; each is checked against the pairs first.
EVERYDAY = ["poison", "neighbor", "lawyer", "gun", "apartment", "police", "money", "girlfriend", "drunk", "steal"]


def _pair_text() -> str:
    rows = [json.loads(line) for line in DEMO_PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return " ".join(f"{r['prompt']} {r['chosen']} {r['rejected']}" for r in rows).lower()


def _last_user_turns() -> list[str]:
    turns = []
    for line in DEMO_PAIRS.read_text(encoding="utf-8").splitlines():
        prompt = json.loads(line)["prompt"]
        human = [part for part in re.split(r"\n\nHuman: ", prompt) if part][-1]
        turns.append(human.split("\n\nAssistant:")[0])
    return turns


@pytest.fixture
def demo_corpus(db: Any) -> Corpus:
    call_command("load_corpus", "--demo")
    return Corpus.objects.get()


def test_demo_loads_the_shipped_wordnet_file_once(db: Any) -> None:
    call_command("load_corpus", "--demo")
    call_command("load_corpus", "--demo")  # idempotent: runs on every `make run`
    corpus = Corpus.objects.get()
    assert corpus.name == "WordNet 3.0 (demo vocabulary)"
    assert corpus.n_documents == sum(1 for _ in read_jsonl(DEMO_CORPUS)) > 4000
    assert "Princeton University" in corpus.licence


def test_searching_words_of_the_demo_pairs_finds_their_entries(demo_corpus: Corpus) -> None:
    text = _pair_text()
    for word in EVERYDAY:
        assert re.search(rf"\b{word}\b", text), f"{word!r} is not in the demo pairs: pick another word"
        outcome = corpus_search(word)
        assert outcome.hits, word
        titles = [hit.title.lower() for hit in outcome.hits[:3]]
        assert word in titles, (word, titles)  # its own entry ranks in the top three
    poison = next(hit for hit in corpus_search("poison").hits if hit.title == "poison")
    assert "<mark>poison</mark>" in poison.snippet_html and poison.url.endswith("?s=poison")


def test_most_pairs_have_a_content_word_with_its_own_entry(demo_corpus: Corpus) -> None:
    """For each pair, search the longest words of the last user turn: most find an entry of that word."""
    found = tried = 0
    for turn in _last_user_turns():
        words = sorted(set(re.findall(r"[a-z]{5,}", turn.lower())), key=lambda w: (-len(w), w))[:3]
        if not words:
            continue
        tried += 1
        titles = {hit.title.lower() for word in words for hit in corpus_search(word, limit=3).hits}
        found += any(word in titles for word in words)
    assert tried > 250
    assert found / tried > 0.9, (found, tried)
