"""Pair file formats: parsing and validating one JSON Lines record. No Django imports.

Accepted record (one JSON object per line):
- ``prompt``: a transcript string in hh-rlhf form ("\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nAssistant:"),
  or a list of ``{"role", "content"}`` messages (roles system / user / assistant; "human" means user);
- either ``chosen`` and ``rejected`` (the source's preference: chosen is stored as response A),
  or ``response_a`` and ``response_b`` (no source label);
- optional ``id``, ``source``, ``subset`` (strings) and ``metadata`` (object).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

ROLE_ALIASES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system", "gpt": "assistant"}
_TURN_SPLIT_RE = re.compile(r"\n\n(Human|Assistant|System):")


class RecordError(ValueError):
    """A record is invalid; ``field`` names the offending field (or "" for the whole line)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class PairRecord:
    conversation: list[dict[str, str]]
    response_a: str
    response_b: str
    source_label: str  # "A" when the file named a chosen response, else ""
    external_id: str = ""
    source: str = ""
    subset: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return content_hash(self.conversation, self.response_a, self.response_b)


def content_hash(conversation: list[dict[str, str]], response_a: str, response_b: str) -> str:
    """Identity of a pair: the conversation and the unordered pair of responses.

    A file that lists the same two responses the other way round holds the same comparison,
    so the responses are sorted before hashing.
    """
    first, second = sorted([response_a, response_b])
    payload = json.dumps([conversation, first, second], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_transcript(text: str) -> list[dict[str, str]]:
    """Split an hh-rlhf transcript into messages.

    ``"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: bye\\n\\nAssistant:"`` becomes
    user "hi", assistant "hello", user "bye"; the trailing empty assistant turn (the one being
    judged) is dropped. Free text before the first marker (or text with no markers) is a user turn.
    """
    # re.split with a capturing group alternates [text, role, text, role, text, ...].
    parts = _TURN_SPLIT_RE.split(text if text.startswith("\n\n") else "\n\n" + text)
    messages = [{"role": "user", "content": parts[0].strip()}] if parts[0].strip() else []
    last = len(parts) - 2
    for i in range(1, len(parts), 2):
        role = ROLE_ALIASES[parts[i].lower()]
        content = parts[i + 1].strip()
        if not content and i == last and role == "assistant":
            continue
        messages.append({"role": role, "content": content})
    return messages


def to_transcript(conversation: list[dict[str, str]]) -> str:
    """The inverse of :func:`parse_transcript`: hh-rlhf form ending with "\\n\\nAssistant:"."""
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    parts = [f"\n\n{names.get(m['role'], 'Human')}: {m['content']}" for m in conversation]
    return "".join(parts) + "\n\nAssistant:"


def _conversation(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        if not value.strip():
            raise RecordError("prompt", "is empty")
        messages = parse_transcript(value)
    elif isinstance(value, list):
        messages = []
        for i, message in enumerate(value):
            where = f"prompt[{i}]"
            if not isinstance(message, dict):
                raise RecordError(where, f"must be an object with 'role' and 'content', got {type(message).__name__}")
            role, content = message.get("role"), message.get("content")
            if not isinstance(role, str) or role.lower() not in ROLE_ALIASES:
                raise RecordError(f"{where}.role", f"must be one of system, user, assistant; got {role!r}")
            if not isinstance(content, str):
                raise RecordError(f"{where}.content", f"must be a string, got {type(content).__name__}")
            messages.append({"role": ROLE_ALIASES[role.lower()], "content": content.strip()})
    else:
        raise RecordError("prompt", f"must be a string or a list of messages, got {type(value).__name__}")
    if not messages:
        raise RecordError("prompt", "has no messages")
    for i, message in enumerate(messages):
        if not message["content"]:
            raise RecordError("prompt", f"message {i + 1} ({message['role']}) is empty")
    if messages[-1]["role"] != "user":
        raise RecordError("prompt", "must end with a user turn (the turn the responses answer)")
    return messages


def _text(record: dict[str, Any], name: str) -> str:
    if name not in record:
        raise RecordError(name, "is missing")
    value = record[name]
    if not isinstance(value, str):
        raise RecordError(name, f"must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise RecordError(name, "is empty")
    return value


def _optional_str(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(name, f"must be a string, got {type(value).__name__}")
    return str(value)[:200]


def parse_record(line: str) -> PairRecord:
    """Parse and validate one JSON Lines record; raises :class:`RecordError` naming the field."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError("", f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(record, dict):
        raise RecordError("", f"expected a JSON object, got {type(record).__name__}")
    if "prompt" not in record:
        raise RecordError("prompt", "is missing")
    conversation = _conversation(record["prompt"])
    has_labelled = "chosen" in record or "rejected" in record
    has_unlabelled = "response_a" in record or "response_b" in record
    if has_labelled and has_unlabelled:
        raise RecordError("", "give either chosen/rejected or response_a/response_b, not both")
    if has_unlabelled:
        first_name, second_name, label = "response_a", "response_b", ""
    else:
        first_name, second_name, label = "chosen", "rejected", "A"
    first, second = _text(record, first_name), _text(record, second_name)
    if first == second:
        raise RecordError(second_name, f"is identical to '{first_name}'")
    metadata = record.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise RecordError("metadata", f"must be an object, got {type(metadata).__name__}")
    return PairRecord(
        conversation=conversation,
        response_a=first,
        response_b=second,
        source_label=label,
        external_id=_optional_str(record, "id"),
        source=_optional_str(record, "source"),
        subset=_optional_str(record, "subset"),
        metadata=metadata,
    )
