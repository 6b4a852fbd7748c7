"""DRF's default JSON parser, with a nesting limit.

Python's JSON decoder recurses once per nesting level: a body of 100,000 ``[`` raises
``RecursionError``, which DRF's ``JSONParser`` does not catch (a 500, with DEBUG on a page of
settings). Here any body nested deeper than :data:`MAX_JSON_DEPTH` is a 400 naming the limit,
before a serializer (or the error renderer) walks it again.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests containers more than ``limit`` levels deep; iterative, no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class SafeJSONParser(JSONParser):
    """``JSONParser`` that answers 400 for JSON nested more than ``MAX_JSON_DEPTH`` levels."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        too_deep = f"JSON parse error - nested more than {MAX_JSON_DEPTH} levels deep"
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep) from None
        if json_depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(too_deep)
        return data
