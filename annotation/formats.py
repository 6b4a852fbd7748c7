"""Pair file formats: parsing and validating one JSON Lines record. No Django imports.

Accepted record (one JSON object per line):
- ``prompt``: a transcript string in hh-rlhf form ("\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nAssistant:"),
  or a list of ``{"role", "content"}`` messages (roles system / user / assistant; "human" means user);
- either ``chosen`` and ``rejected`` (the source's preference: chosen is stored as response A),
  or ``response_a`` and ``response_b`` (no source label);
- optional ``id``, ``source``, ``subset`` (strings) and ``metadata`` (object).

Every value of a record must also be storable as is in PostgreSQL text and jsonb and in SQLite:
no NUL characters, no lone UTF-16 surrogates, no NaN/Infinity, integers within 64 bits, nesting
at most :data:`MAX_DEPTH` levels. A value that breaks one of these is a :class:`RecordError`
naming its field (e.g. ``metadata.scores[2]``), never an error at insert time.

Two parsers, one verdict. A line is first parsed by orjson (a strict, fast parser) and accepted
there only when the quick checks of :func:`_fast_loads` prove that the careful path would accept
it too; anything else (a JSON error, NaN, a lone surrogate, a NUL, a deep or huge number) goes
through the careful path (:func:`_loads` and :func:`_check_value`), which names the field. So the
errors are the careful path's, and a good line costs one orjson parse.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

MAX_DEPTH = 32  # nesting levels of a record (a message list is 3): deeper is refused before it costs stack
MAX_INT_DIGITS = 19  # 64-bit integers; longer digit strings are refused before Python converts them
_INT64 = 2**63

ROLE_ALIASES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system", "gpt": "assistant"}
_TURN_SPLIT_RE = re.compile(r"\n\n(Human|Assistant|System):")
_MARKER_ROLES = {"Human": "user", "Assistant": "assistant", "System": "system"}


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
    return hashlib.sha256(_hash_payload([conversation, first, second])).hexdigest()


def _hash_payload(value: list[Any]) -> bytes:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` as UTF-8: the hashed form.

    orjson writes the same bytes for the strings and lists of dicts of strings a pair is made of
    (tests/annotation/test_import_onepass.py checks every control and escape character), so stored
    hashes stay valid. Values orjson refuses (a lone surrogate, a non-string key) take the stdlib.
    """
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8", errors="surrogatepass")


def parse_transcript(text: str) -> list[dict[str, str]]:
    """Split an hh-rlhf transcript into messages.

    ``"\\n\\nHuman: hi\\n\\nAssistant: hello\\n\\nHuman: bye\\n\\nAssistant:"`` becomes
    user "hi", assistant "hello", user "bye"; the trailing empty assistant turn (the one being
    judged) is dropped. Free text before the first marker (or text with no markers) is a user turn.
    """
    # re.split with a capturing group alternates [text, role, text, role, text, ...].
    parts = _TURN_SPLIT_RE.split(text if text.startswith("\n\n") else "\n\n" + text)
    head = parts[0].strip()
    messages = [{"role": "user", "content": head}] if head else []
    last = len(parts) - 2
    for i in range(1, len(parts), 2):
        role = _MARKER_ROLES[parts[i]]
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


class _Rejected:
    """A JSON number the parser hooks refused; the walk reports it with the field it sits in."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_int(text: str) -> int | _Rejected:
    digits = text.lstrip("-")
    # Checked on the digit string: int() of a 5000-digit string raises (or costs quadratic time) first.
    if len(digits) > MAX_INT_DIGITS or not -_INT64 <= int(text) < _INT64:
        shown = text if len(text) <= 24 else f"{text[:12]}... ({len(digits)} digits)"
        return _Rejected(f"integer {shown} is out of range (64-bit integers only)")
    return int(text)


def _parse_float(text: str) -> float | _Rejected:
    value = float(text)
    if not math.isfinite(value):
        return _Rejected(f"number {text[:24]} is out of range")
    return value


def _parse_constant(name: str) -> _Rejected:
    return _Rejected(f"{name} is not allowed (JSON has no NaN or Infinity)")


def _field_name(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_text(path: str, text: str, what: str) -> None:
    if "\x00" in text:
        raise RecordError(path, f"{what} contains a NUL character (\\u0000)")
    if _SURROGATE_RE.search(text):
        raise RecordError(path, f"{what} contains a lone UTF-16 surrogate (not valid Unicode text)")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _check_value(value: Any, path: str, depth: int) -> None:
    """Walk a parsed record; raise :class:`RecordError` at the first value that cannot be stored."""
    if depth > MAX_DEPTH:
        raise RecordError(path, f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        _check_text(path, value, "text")
    elif isinstance(value, _Rejected):
        raise RecordError(path, value.reason)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(path, key, f"the key {key[:40]!r}")
            _check_value(item, _field_name(path, key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{path}[{i}]", depth + 1)


def _deep_field(line: str) -> str:
    """The top-level key under which ``line`` nests deeper than :data:`MAX_DEPTH` ("" if none is found).

    Only called after the parser gave up on the line, so its character loop costs nothing on good files.
    """
    depth, in_string, escaped, start, key, last_string = 0, False, False, 0, "", ""
    for i, char in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string, last_string = False, line[start:i]
        elif char == '"':
            in_string, start = True, i + 1
        elif char == ":" and depth == 1:
            key = last_string
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return key
        elif char in "]}":
            depth -= 1
    return ""


def _loads(line: str) -> Any:
    try:
        return json.loads(line, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise RecordError("", f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        where = _deep_field(line)
        raise RecordError(where, f"is nested more than {MAX_DEPTH} levels deep") from None


Fields = tuple[list[dict[str, str]], str, str, str, str, str, str, dict[str, Any]]
"""(conversation, response_a, response_b, source_label, external_id, source, subset, metadata)."""


def _fast_loads(data: bytes) -> dict[str, Any] | None:
    """``data`` parsed by orjson when it is certainly a storable JSON object, else None.

    orjson refuses NaN/Infinity, numbers that overflow a double, lone surrogates, invalid UTF-8
    and a BOM, so what it accepts can only break the rules of this module by a NUL (written
    ``\\u0000``: JSON has no other way), nesting deeper than :data:`MAX_DEPTH`, an integer outside
    64 bits, or an integer so long that orjson made it a float (19 digits or more). The walk below
    checks the last three; any doubt returns None and the careful path decides.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict or b"\\u0000" in data:
        return None
    if all(type(item) is str for item in value.values()):
        return value  # a flat record of strings (a transcript prompt): nothing more to check
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    saw_float = False
    while stack:
        item, depth = pop()
        if depth > MAX_DEPTH:
            return None
        kind = type(item)
        if kind is str:
            continue
        if kind is dict:
            for child in item.values():
                push((child, depth + 1))
        elif kind is list:
            for child in item:
                push((child, depth + 1))
        elif kind is int:
            if not -_INT64 <= item < _INT64:
                return None
        elif kind is float:
            saw_float = True
    if saw_float and _LONG_DIGITS_RE.search(data):
        return None  # perhaps an integer too big for 64 bits that orjson turned into a float
    return value


_LONG_DIGITS_RE = re.compile(rb"\d{%d}" % MAX_INT_DIGITS)


def _careful_loads(line: str) -> dict[str, Any]:
    """The stdlib parser with hooks, then the full walk: every error names its field."""
    record = _loads(line.removeprefix("\ufeff"))
    if not isinstance(record, dict):
        kind = "a number out of range" if isinstance(record, _Rejected) else type(record).__name__
        raise RecordError("", f"expected a JSON object, got {kind}")
    _check_value(record, "", 0)
    return record


def parse_fields(data: bytes) -> Fields:
    """Parse and validate one JSON Lines record given as UTF-8 bytes; the importer's entry point.

    Returns the fields as a plain tuple (no per-record object). Raises :class:`RecordError`
    naming the field, or :class:`UnicodeDecodeError` when ``data`` is not UTF-8.
    """
    record = _fast_loads(data)
    if record is None:
        record = _careful_loads(data.decode("utf-8"))
    return _fields(record)


def parse_record(line: str) -> PairRecord:
    """Parse and validate one JSON Lines record; raises :class:`RecordError` naming the field.

    A UTF-8 byte-order mark before the first record is ignored (the file reader strips it; one
    left at the start of ``line`` is stripped here too).
    """
    try:
        record = _fast_loads(line.encode("utf-8"))
    except UnicodeEncodeError:  # a raw lone surrogate: the careful path names its field
        record = None
    if record is None:
        record = _careful_loads(line)
    conversation, first, second, label, external_id, source, subset, metadata = _fields(record)
    return PairRecord(
        conversation=conversation,
        response_a=first,
        response_b=second,
        source_label=label,
        external_id=external_id,
        source=source,
        subset=subset,
        metadata=metadata,
    )


def _fields(record: dict[str, Any]) -> Fields:
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
    return (
        conversation,
        first,
        second,
        label,
        _optional_str(record, "id"),
        _optional_str(record, "source"),
        _optional_str(record, "subset"),
        metadata,
    )
