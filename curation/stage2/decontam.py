"""Decontamination against an evaluation set: drop pool pairs whose prompt shares a 13-gram with it.

Pure module (no Django, no torch). Text is normalised the usual way for n-gram overlap checks
(lower case, words = runs of letters and digits, punctuation and whitespace ignored), then every
window of ``n`` consecutive words is hashed into a set. A pool prompt is contaminated when any of
its windows is in the set; the report names the benchmark prompt and the shared words.

Memory: one Python int per distinct benchmark n-gram (RewardBench's 3k prompts give ~1M), and a
pool prompt costs one hash per word. Hash collisions between different 13-grams (64-bit) are
negligible; :meth:`BenchmarkIndex.match` re-checks the words before reporting, so a report never
names an overlap that is not there.

Benchmark files are RewardBench-format: JSON Lines (or a JSON array) of objects with ``prompt``
(a string, or a list of ``{role, content}`` messages), usually ``chosen``/``rejected``/``id``/``subset``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_N = 13
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


class BenchmarkFormatError(ValueError):
    """A benchmark file that cannot be read; the message names the line and the field."""


def words(text: str) -> list[str]:
    """Lower-cased words (runs of letters/digits); punctuation, underscores and whitespace separate them."""
    return _WORD.findall(text.lower())


def prompt_text(prompt: Any) -> str:
    """The text of a prompt: a string as is, or the contents of a message list joined by newlines.

    Raises ValueError for anything else (the caller names the line).
    """
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
        return "\n".join(m["content"] for m in prompt)
    raise ValueError("prompt must be a string or a list of {role, content} messages")


def shingles(tokens: Sequence[str], n: int = DEFAULT_N) -> Iterator[tuple[int, int]]:
    """``(start, hash)`` of every window of ``n`` consecutive tokens (none when there are fewer than ``n``)."""
    for i in range(len(tokens) - n + 1):
        yield i, hash(tuple(tokens[i : i + n]))


@dataclass(frozen=True)
class BenchmarkPrompt:
    """One prompt of the benchmark: its position in the file, its ``id`` (or the line number) and subset."""

    index: int
    id: str
    subset: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Contamination:
    """Why a pool prompt was dropped: the benchmark prompt it overlaps and the first shared n-gram."""

    benchmark_id: str
    benchmark_subset: str
    ngram: str

    def as_dict(self) -> dict[str, str]:
        return {"benchmark_id": self.benchmark_id, "benchmark_subset": self.benchmark_subset, "ngram": self.ngram}


class BenchmarkIndex:
    """The set of hashed ``n``-grams of a benchmark's prompts, and which prompt each came from."""

    def __init__(self, prompts: Iterable[BenchmarkPrompt], n: int = DEFAULT_N) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.prompts: list[BenchmarkPrompt] = list(prompts)
        # hash -> index of the first prompt that has it (enough to name one source in the report)
        self._owner: dict[int, int] = {}
        for k, prompt in enumerate(self.prompts):
            for _, h in shingles(prompt.tokens, n):
                self._owner.setdefault(h, k)

    def __len__(self) -> int:
        """Distinct n-grams indexed."""
        return len(self._owner)

    def match(self, text: str) -> Contamination | None:
        """The first benchmark n-gram found in ``text`` (None when it shares none)."""
        tokens = words(text)
        n = self.n
        for start, h in shingles(tokens, n):
            owner = self._owner.get(h)
            if owner is None:
                continue
            gram = tuple(tokens[start : start + n])
            prompt = self.prompts[owner]
            # Re-check the words: a hash collision must not drop a clean pair.
            if _contains(prompt.tokens, gram):
                return Contamination(prompt.id, prompt.subset, " ".join(gram))
        return None

    def is_contaminated(self, text: str) -> bool:
        return self.match(text) is not None


def _contains(tokens: Sequence[str], gram: tuple[str, ...]) -> bool:
    n = len(gram)
    return any(tuple(tokens[i : i + n]) == gram for i in range(len(tokens) - n + 1))


def parse_benchmark(lines: Iterable[str]) -> list[BenchmarkPrompt]:
    """Benchmark prompts from a RewardBench-format file's lines (JSON Lines, or one JSON array).

    Raises :class:`BenchmarkFormatError` naming the line and field of the first bad record, and for
    a file with no prompt at all.
    """
    text_lines = list(lines)
    stripped = "".join(text_lines).lstrip()
    records: list[tuple[int, Any]]
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"invalid JSON array: {exc.msg} (line {exc.lineno})") from None
        records = [(i + 1, item) for i, item in enumerate(data)]
        where = "item"
    else:
        records = []
        for number, line in enumerate(text_lines, start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise BenchmarkFormatError(f"line {number}: invalid JSON ({exc.msg})") from None
        where = "line"
    prompts: list[BenchmarkPrompt] = []
    for number, record in records:
        if not isinstance(record, dict):
            raise BenchmarkFormatError(f"{where} {number}: expected a JSON object with a 'prompt' field")
        if "prompt" not in record:
            raise BenchmarkFormatError(f"{where} {number}: missing field 'prompt'")
        try:
            text = prompt_text(record["prompt"])
        except ValueError as exc:
            raise BenchmarkFormatError(f"{where} {number}: field 'prompt': {exc}") from None
        prompts.append(
            BenchmarkPrompt(
                index=len(prompts),
                id=str(record.get("id", number)),
                subset=str(record.get("subset", "")),
                tokens=tuple(words(text)),
            )
        )
    if not prompts:
        raise BenchmarkFormatError("the benchmark file holds no prompt")
    return prompts
