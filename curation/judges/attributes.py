"""The prompt asking a judge to propose a pair's five attributes, and how its answer is read (pure).

The five attributes are the ones annotators give (annotation.models.Annotation): the task category
(from the project's taxonomy), objectivity, controversiality, the desired attributes (from the
project's list) and a one-line guideline. Up to :data:`MAX_EXAMPLES` human-verified examples (the
most similar verified pairs, most similar first, each with its attribute majorities) show how the
project uses its taxonomy. The answer is a JSON object with those keys
(:func:`attribute_schema`); :func:`parse_attributes` reads it tolerantly (a fenced or embedded JSON
object, case and spacing forgiven) and says which field is unreadable, never guessing a value.
Proposals across judges are combined by :func:`combine_proposals`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from annotation.tools.llm import json_objects
from curation.judges.prompt import MAX_EXAMPLES, PairText, _transcript, strip_tool_parts

OBJECTIVITY = ("factual", "opinion", "open_ended")
CONTROVERSIALITY = ("low", "medium", "high")
FIELDS = ("task_category", "objectivity", "controversiality", "desired_attributes", "guideline")

SYSTEM_PROMPT = (
    "You are an expert annotator of conversations with AI assistants. Describe the conversation's "
    "last user request with the attributes asked for, following the guideline. Reply with JSON only."
)


def attribute_schema(taxonomy: Sequence[str], desired: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of an answer for a project's taxonomy and desired attributes."""
    return {
        "type": "object",
        "properties": {
            "task_category": {"type": "string", "enum": list(taxonomy)},
            "objectivity": {"type": "string", "enum": list(OBJECTIVITY)},
            "controversiality": {"type": "string", "enum": list(CONTROVERSIALITY)},
            "desired_attributes": {"type": "array", "items": {"type": "string", "enum": list(desired)}},
            "guideline": {"type": "string"},
        },
        "required": list(FIELDS),
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class AttributeExample:
    """A human-verified pair shown as an example: its conversation and its verified five attributes."""

    conversation: Sequence[dict[str, str]]
    values: dict[str, Any]


def example_answer(values: dict[str, Any]) -> str:
    """An example's attributes written as the answer is asked for (the five keys, in order, as JSON)."""
    return json.dumps({name: values.get(name, [] if name == "desired_attributes" else "") for name in FIELDS})


def build_attribute_messages(
    *,
    guideline: str,
    taxonomy: Sequence[str],
    desired: Sequence[str],
    pair: PairText,
    examples: Sequence[AttributeExample] = (),
) -> list[dict[str, str]]:
    """The messages asking for the five attributes of ``pair`` (its two responses shown as context).

    ``examples`` (at most :data:`MAX_EXAMPLES`, in the caller's order: most similar first) show a
    conversation each with the attributes human annotators gave it, in the answer's JSON form; the
    responses of an example are left out (the attributes describe the request, and prompts stay short).
    """
    if not taxonomy:
        raise ValueError("the project has no task categories to choose from")
    if len(examples) > MAX_EXAMPLES:
        raise ValueError(f"at most {MAX_EXAMPLES} examples, got {len(examples)}")
    parts: list[str] = []
    rules = strip_tool_parts(guideline or "")
    if rules:
        parts.append(f"## Guideline\n{rules}")
    for number, example in enumerate(examples, start=1):
        parts.append(
            f"## Example {number} (attributes verified by human annotators)\n"
            f"### Conversation\n{_transcript(example.conversation)}\n\n"
            f"### Verified attributes\n{example_answer(example.values)}"
        )
    # With examples above, the target's heading says which conversation the answer is about.
    heading = "## The conversation to describe" if examples else "## Conversation"
    parts.append(
        f"{heading}\n{_transcript(pair.conversation)}\n\n"
        f"## Response A\n{pair.response_a}\n\n## Response B\n{pair.response_b}"
    )
    parts.append(
        "## Attributes to give\n"
        f"- task_category: one of {', '.join(taxonomy)}\n"
        f"- objectivity: one of {', '.join(OBJECTIVITY)}\n"
        f"- controversiality: one of {', '.join(CONTROVERSIALITY)}\n"
        f"- desired_attributes: a list of those a good response needs, from {', '.join(desired) or '(none)'}\n"
        "- guideline: one line saying what a good response to this request must do\n\n"
        'Reply with JSON only: {"task_category": ..., "objectivity": ..., "controversiality": ..., '
        '"desired_attributes": [...], "guideline": "..."}'
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(parts)}]


@dataclass(frozen=True)
class Proposal:
    """What one answer proposes; ``error`` names the unreadable fields (then ``values`` is empty)."""

    values: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _norm(text: Any) -> str:
    return " ".join(str(text or "").replace("-", " ").replace("_", " ").split()).lower()


def _pick(value: Any, options: Sequence[str]) -> str | None:
    wanted = _norm(value)
    return next((o for o in options if _norm(o) == wanted), None)


def parse_attributes(content: str, taxonomy: Sequence[str], desired: Sequence[str]) -> Proposal:
    """Read an answer: the first JSON object with a ``task_category``; every field must be readable.

    Unknown desired attributes are dropped (named in nothing); a missing guideline is an empty one.
    """
    data = next((d for d in json_objects((content or "").strip()) if "task_category" in d), None)
    if data is None:
        return Proposal(error="no JSON object with a task_category in the answer")
    values: dict[str, Any] = {
        "task_category": _pick(data.get("task_category"), taxonomy),
        "objectivity": _pick(data.get("objectivity"), OBJECTIVITY),
        "controversiality": _pick(data.get("controversiality"), CONTROVERSIALITY),
    }
    bad = [name for name, value in values.items() if value is None]
    raw_desired = data.get("desired_attributes") or []
    if isinstance(raw_desired, str):
        raw_desired = [raw_desired]
    if not isinstance(raw_desired, list):
        bad.append("desired_attributes")
        raw_desired = []
    picked = {_pick(item, desired) for item in raw_desired}
    values["desired_attributes"] = [a for a in desired if a in picked]
    guideline = data.get("guideline") or ""
    values["guideline"] = " ".join(str(guideline).split())[:300]
    if bad:
        return Proposal(error=f"unreadable: {', '.join(bad)}")
    return Proposal(values)


def combine_proposals(proposals: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """One proposal from several judges' (in panel order): per attribute the most frequent value
    (the earliest judge's on a tie); desired attributes named by more than half; the first guideline."""
    if not proposals:
        return None
    combined: dict[str, Any] = {}
    for name in ("task_category", "objectivity", "controversiality"):
        counts = Counter(p[name] for p in proposals)
        top = max(counts.values())
        combined[name] = next(p[name] for p in proposals if counts[p[name]] == top)
    named = Counter(a for p in proposals for a in set(p["desired_attributes"]))
    order = [a for p in proposals for a in p["desired_attributes"]]
    combined["desired_attributes"] = [a for a in dict.fromkeys(order) if named[a] * 2 > len(proposals)]
    combined["guideline"] = next((p["guideline"] for p in proposals if p["guideline"]), "")
    return combined
