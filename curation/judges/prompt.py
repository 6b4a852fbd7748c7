"""A judge's prompt and how its answer is read (pure: no Django, no HTTP).

The prompt (DESIGN.md, stage 1 step 5 and stage 2 step 2):

1. the project's guideline, without the parts about annotator tools (:func:`strip_tool_parts`);
2. up to :data:`MAX_EXAMPLES` human-verified example pairs, each with its attributes and final label,
   written in the same "Candidate 1 / Candidate 2" form the target uses;
3. the target pair, its responses as "Candidate 1" and "Candidate 2" in an order (``AB``: A is
   Candidate 1; ``BA``: B is) that the caller draws at random and stores.

The judge answers ``{"choice": "1" | "2" | "tie", "strength": "clearly" | "slightly"}``
(:data:`ANSWER_SCHEMA`); :func:`parse_judgement` reads that tolerantly (strict JSON, JSON in a
fence or in prose, or a plain sentence naming one candidate) and says why when it cannot, so an
unreadable answer is its own outcome, never a default.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from annotation.preference import CLEARLY, SLIGHTLY, A, B
from annotation.tools.llm import json_objects

MAX_EXAMPLES = 8
ORDERS = ("AB", "BA")
CHOICE_1 = "1"
CHOICE_2 = "2"
CHOICE_TIE = "tie"
CHOICES = (CHOICE_1, CHOICE_2, CHOICE_TIE)
TIE = "tie"  # a side-level outcome: the judge found the candidates equal

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "choice": {"type": "string", "enum": list(CHOICES)},
        "strength": {"type": "string", "enum": [CLEARLY, SLIGHTLY]},
    },
    "required": ["choice", "strength"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You are an expert judge of AI assistant responses. Given a conversation and two candidate "
    "final responses, decide which candidate is the better reply to the last user turn, following "
    "the guideline. Judge helpfulness, correctness, safety and how well each follows the user's "
    "request. The order of the candidates is random: do not prefer a candidate for its position "
    "or its length."
)
ANSWER_INSTRUCTION = (
    'Reply with JSON only: {"choice": "1" | "2" | "tie", "strength": "clearly" | "slightly"}, where '
    'choice names the better candidate ("tie" only when they are truly equal) and strength says by how much.'
)

#: Words that mark a guideline heading or line as being about the annotators' tools.
TOOL_WORDS = (
    "tool",
    "fact-check",
    "fact check",
    "code runner",
    "run the code",
    "sandbox",
    "ai assist",
    "ask the ai",
    "web search",
    "search engine",
    "corpus search",
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")


@dataclass(frozen=True)
class PairText:
    """A pair as the prompt needs it: the conversation and responses A and B (canonical, unshuffled)."""

    conversation: Sequence[dict[str, str]]
    response_a: str
    response_b: str


@dataclass(frozen=True)
class Example:
    """A human-verified pair shown to the judge: its final label (side, strength) and attributes."""

    pair: PairText
    side: str  # A or B
    strength: str  # clearly or slightly
    attributes: dict[str, Any] = field(default_factory=dict)
    order: str = "AB"  # how the example's candidates are shown (drawn at random too, so examples teach no position)


@dataclass(frozen=True)
class Judgement:
    """What one answer says, in the target's shown positions. ``error`` is set (and choice empty) when unreadable."""

    choice: str = ""  # "1", "2", "tie" or "" (unreadable)
    strength: str = ""  # clearly / slightly / "" (not given)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.choice in CHOICES


def strip_tool_parts(guideline: str) -> str:
    """The guideline without the parts about tools: sections whose heading names a tool, and lines that do.

    A Markdown section runs from its heading to the next heading of the same or a higher level.
    """
    kept: list[str] = []
    skip_level: int | None = None
    for line in guideline.splitlines():
        heading = _HEADING.match(line.strip())
        if heading:
            level = len(heading.group(1))
            if skip_level is not None and level <= skip_level:
                skip_level = None
            if skip_level is None and _mentions_tools(heading.group(2)):
                skip_level = level
                continue
        if skip_level is not None:
            continue
        if _mentions_tools(line):
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def _mentions_tools(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in TOOL_WORDS)


def shown(pair: PairText, order: str) -> tuple[str, str]:
    """(Candidate 1, Candidate 2) for ``order``: ``AB`` shows A first, ``BA`` shows B first."""
    if order == "AB":
        return pair.response_a, pair.response_b
    if order == "BA":
        return pair.response_b, pair.response_a
    raise ValueError(f"order must be 'AB' or 'BA', got {order!r}")


def side_to_choice(side: str, order: str) -> str:
    """The candidate number that shows canonical ``side`` under ``order``."""
    if side not in (A, B):
        raise ValueError(f"side must be 'A' or 'B', got {side!r}")
    first = A if order == "AB" else B if order == "BA" else None
    if first is None:
        raise ValueError(f"order must be 'AB' or 'BA', got {order!r}")
    return CHOICE_1 if side == first else CHOICE_2


def choice_to_side(choice: str, order: str) -> str:
    """The canonical side (A, B, or ``tie``) a shown choice stands for under ``order``."""
    if order not in ORDERS:
        raise ValueError(f"order must be 'AB' or 'BA', got {order!r}")
    if choice == CHOICE_TIE:
        return TIE
    if choice == CHOICE_1:
        return A if order == "AB" else B
    if choice == CHOICE_2:
        return B if order == "AB" else A
    raise ValueError(f"choice must be one of {', '.join(CHOICES)}, got {choice!r}")


def _transcript(conversation: Sequence[dict[str, str]]) -> str:
    return "\n\n".join(f"[{m.get('role', 'user')}]\n{m.get('content', '')}" for m in conversation)


def _attributes_text(attributes: dict[str, Any]) -> str:
    lines = []
    for key in sorted(attributes):
        value = attributes[key]
        if value in (None, "", [], ()):
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        lines.append(f"- {key.replace('_', ' ')}: {value}")
    return "\n".join(lines)


def _pair_block(pair: PairText, order: str) -> str:
    first, second = shown(pair, order)
    return (
        f"### Conversation\n{_transcript(pair.conversation)}\n\n### Candidate 1\n{first}\n\n### Candidate 2\n{second}"
    )


def build_messages(
    *,
    guideline: str,
    examples: Sequence[Example],
    target: PairText,
    order: str,
    target_attributes: dict[str, Any] | None = None,
) -> list[dict[str, str]]:
    """The chat messages asking one judge about ``target`` shown in ``order``.

    ``examples`` beyond :data:`MAX_EXAMPLES` are an error (the caller picks the most similar ones).
    The same inputs always give the same messages, so the prompt hash identifies the question.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be 'AB' or 'BA', got {order!r}")
    if len(examples) > MAX_EXAMPLES:
        raise ValueError(f"at most {MAX_EXAMPLES} examples, got {len(examples)}")
    parts: list[str] = []
    rules = strip_tool_parts(guideline or "")
    if rules:
        parts.append(f"## Guideline\n{rules}")
    if examples:
        shown_examples = []
        for number, example in enumerate(examples, start=1):
            if example.strength not in (CLEARLY, SLIGHTLY):
                raise ValueError(f"example {number}: strength must be clearly or slightly, got {example.strength!r}")
            answer = {"choice": side_to_choice(example.side, example.order), "strength": example.strength}
            attrs = _attributes_text(example.attributes)
            shown_examples.append(
                f"## Example {number} (verified by human annotators)\n"
                + (f"Attributes:\n{attrs}\n\n" if attrs else "")
                + _pair_block(example.pair, example.order)
                + f"\n\n### Verified answer\n{json.dumps(answer)}"
            )
        parts.append("\n\n".join(shown_examples))
    attrs = _attributes_text(target_attributes or {})
    parts.append(
        "## The pair to judge\n"
        + (f"Attributes:\n{attrs}\n\n" if attrs else "")
        + _pair_block(target, order)
        + f"\n\n{ANSWER_INSTRUCTION}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


def prompt_hash(messages: Sequence[dict[str, str]]) -> str:
    """SHA-256 of the messages (canonical JSON): the prompt part of a call's cache key."""
    return hashlib.sha256(json.dumps(list(messages), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --- reading the answer --------------------------------------------------------------------------

_CHOICE_ALIASES = {
    "1": CHOICE_1,
    "candidate 1": CHOICE_1,
    "candidate_1": CHOICE_1,
    "candidate1": CHOICE_1,
    "first": CHOICE_1,
    "2": CHOICE_2,
    "candidate 2": CHOICE_2,
    "candidate_2": CHOICE_2,
    "candidate2": CHOICE_2,
    "second": CHOICE_2,
    "tie": CHOICE_TIE,
    "equal": CHOICE_TIE,
    "both": CHOICE_TIE,
    "neither": CHOICE_TIE,
}
_STRENGTH_ALIASES = {
    "clearly": CLEARLY,
    "clear": CLEARLY,
    "strong": CLEARLY,
    "strongly": CLEARLY,
    "much": CLEARLY,
    "much better": CLEARLY,
    "significantly": CLEARLY,
    "slightly": SLIGHTLY,
    "slight": SLIGHTLY,
    "weak": SLIGHTLY,
    "weakly": SLIGHTLY,
    "marginally": SLIGHTLY,
    "somewhat": SLIGHTLY,
}
_CHOICE_FIELD = re.compile(r'"?choice"?\s*[:=]\s*"?\s*(candidate[ _]?[12]|[12]|tie)\b', re.I)
_STRENGTH_FIELD = re.compile(r'"?strength"?\s*[:=]\s*"?\s*([a-z]+)', re.I)
_PROSE_CANDIDATE = re.compile(r"candidate\s*([12])", re.I)
_PROSE_STRENGTH = re.compile(r"\b(clearly|slightly)\b", re.I)


def normalise_choice(value: Any) -> str:
    """ "1", "2", "tie", or "" for anything else (numbers and "Candidate 1" spellings included)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int) and value in (1, 2):
        return str(value)
    text = str(value or "").strip().lower().strip(".")
    return _CHOICE_ALIASES.get(text, "")


def normalise_strength(value: Any) -> str:
    return _STRENGTH_ALIASES.get(str(value or "").strip().lower(), "")


def parse_judgement(content: str) -> Judgement:
    """Read a judge's answer; a :class:`Judgement` with ``error`` when no single choice can be read.

    Order of trust: a JSON object with ``choice``; ``choice: …`` fields in text (a cut-off JSON
    object); then prose that names exactly one candidate ("Candidate 2 is clearly better"). Prose
    naming both candidates is ambiguous and unreadable; a missing strength is allowed (empty).
    """
    text = (content or "").strip()
    if not text:
        return Judgement(error="empty answer")
    for data in json_objects(text):
        if "choice" in data:
            choice = normalise_choice(data.get("choice"))
            if not choice:
                return Judgement(error=f"choice {str(data.get('choice'))[:40]!r} is not 1, 2 or tie")
            return Judgement(choice=choice, strength=normalise_strength(data.get("strength")))
    field_match = _CHOICE_FIELD.search(text)
    if field_match:
        choice = normalise_choice(field_match.group(1))
        strength_match = _STRENGTH_FIELD.search(text)
        return Judgement(choice=choice, strength=normalise_strength(strength_match.group(1) if strength_match else ""))
    named = {m.group(1) for m in _PROSE_CANDIDATE.finditer(text)}
    if len(named) == 1:
        strength_match = _PROSE_STRENGTH.search(text)
        return Judgement(
            choice=named.pop(), strength=normalise_strength(strength_match.group(1) if strength_match else "")
        )
    if len(named) == 2:
        return Judgement(error="the answer names both candidates without a choice")
    return Judgement(error="no choice found in the answer")


# --- pointwise mode (small local models with logprobs) ------------------------------------------

#: The answer words whose first-token log-probability scores a candidate in pointwise mode.
GOOD_WORDS = ("good", "yes")
BAD_WORDS = ("bad", "no")
POINTWISE_SYSTEM_PROMPT = (
    "You are an expert judge of AI assistant responses. Given a conversation and one candidate final "
    "response, say whether it is a good reply to the last user turn, following the guideline: helpful, "
    "correct, safe and doing what the user asked."
)
POINTWISE_INSTRUCTION = "Is this response good or bad? Answer with one word: good or bad."


def build_pointwise_messages(
    *,
    guideline: str,
    examples: Sequence[Example],
    target: PairText,
    candidate: str,
    target_attributes: dict[str, Any] | None = None,
) -> list[dict[str, str]]:
    """The messages asking whether ``target``'s response ``candidate`` (A or B) is good, alone.

    Each example shows its verified better response as "good" and the other as "bad" (the pair's
    label, turned into two single-response lessons). No position is shown, so there is none to prefer.
    """
    if candidate not in (A, B):
        raise ValueError(f"candidate must be 'A' or 'B', got {candidate!r}")
    if len(examples) > MAX_EXAMPLES:
        raise ValueError(f"at most {MAX_EXAMPLES} examples, got {len(examples)}")
    parts: list[str] = []
    rules = strip_tool_parts(guideline or "")
    if rules:
        parts.append(f"## Guideline\n{rules}")
    for number, example in enumerate(examples, start=1):
        better, worse = (
            (example.pair.response_a, example.pair.response_b)
            if example.side == A
            else (example.pair.response_b, example.pair.response_a)
        )
        # Which of the two lessons comes first is the example's stored order, so examples teach no position.
        lessons = [(better, "good"), (worse, "bad")] if example.order == "AB" else [(worse, "bad"), (better, "good")]
        shown_lessons = "\n\n".join(f"### Response\n{text}\n\n### Answer\n{word}" for text, word in lessons)
        parts.append(
            f"## Example {number} (verified by human annotators)\n### Conversation\n"
            f"{_transcript(example.pair.conversation)}\n\n{shown_lessons}"
        )
    attrs = _attributes_text(target_attributes or {})
    response = target.response_a if candidate == A else target.response_b
    parts.append(
        "## The response to judge\n"
        + (f"Attributes:\n{attrs}\n\n" if attrs else "")
        + f"### Conversation\n{_transcript(target.conversation)}\n\n### Response\n{response}\n\n{POINTWISE_INSTRUCTION}"
    )
    return [{"role": "system", "content": POINTWISE_SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


@dataclass(frozen=True)
class PointwiseScore:
    """A candidate's score: log P(a "good" word) at the first answer token, and log P(a "bad" word).

    ``bounded``: the word was not among the server's top log-probabilities, so its value is the
    smallest one listed (an upper bound). ``score`` is log P(good) − log P(bad): the log-odds.
    """

    logp_good: float
    logp_bad: float
    bounded: bool = False

    @property
    def score(self) -> float:
        return self.logp_good - self.logp_bad


def _word_logprob(top: dict[str, float], words: Sequence[str]) -> float | None:
    found = [lp for token, lp in top.items() if token.strip().lower() in words]
    if not found:
        return None
    # Several spellings of the same word (" good", "Good"): their probabilities add up.
    peak = max(found)
    return peak + math.log(sum(math.exp(lp - peak) for lp in found))


def top_logprobs_of(payload: dict[str, Any]) -> dict[str, float] | None:
    """The first answer token's top log-probabilities from a chat completion, or None when it has none.

    Reads OpenAI's ``choices[0].logprobs.content[0].top_logprobs`` (a list of ``{token, logprob}``)
    and the older completions shape ``choices[0].logprobs.top_logprobs[0]`` (a ``{token: logprob}`` map).
    """
    try:
        logprobs = payload["choices"][0].get("logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        entries = content[0].get("top_logprobs") or []
        top = {
            str(e["token"]): float(e["logprob"])
            for e in entries
            if isinstance(e, dict) and "token" in e and isinstance(e.get("logprob"), int | float)
        }
        if not top and isinstance(content[0].get("logprob"), int | float):
            top = {str(content[0].get("token", "")): float(content[0]["logprob"])}
        return top or None
    legacy = logprobs.get("top_logprobs")
    if isinstance(legacy, list) and legacy and isinstance(legacy[0], dict):
        return {str(k): float(v) for k, v in legacy[0].items() if isinstance(v, int | float)} or None
    return None


def pointwise_score(top: dict[str, float]) -> PointwiseScore:
    """Score one candidate from the first token's top log-probabilities (see :class:`PointwiseScore`)."""
    if not top:
        raise ValueError("no log-probabilities to score")
    floor = min(top.values())
    good = _word_logprob(top, GOOD_WORDS)
    bad = _word_logprob(top, BAD_WORDS)
    return PointwiseScore(
        logp_good=good if good is not None else floor,
        logp_bad=bad if bad is not None else floor,
        bounded=good is None or bad is None,
    )
