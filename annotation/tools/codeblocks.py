"""Fenced code blocks in a response, offered to the code runner (pure Python, no Django)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<body>.*?)(?:\n[ \t]*(?P=fence)|\Z)", re.S)
LANGUAGE_ALIASES = {
    "python": "python",
    "python3": "python",
    "py": "python",
    "bash": "bash",
    "sh": "bash",
    "shell": "bash",
    "console": "bash",
    "zsh": "bash",
}


@dataclass(frozen=True)
class CodeBlock:
    source: str  # e.g. "Response 1"
    number: int  # 1-based within its source
    info: str  # the fence's info string, e.g. "python"
    language: str  # a runner language key, or "" when we do not run that language
    code: str

    @property
    def label(self) -> str:
        kind = self.info or "code"
        return f"{self.source}, block {self.number} ({kind})"


def extract_code_blocks(text: str, source: str) -> list[CodeBlock]:
    """Every fenced block of ``text`` (Markdown ``` or ~~~ fences), in order."""
    blocks = []
    for number, match in enumerate(_FENCE.finditer(text or ""), start=1):
        info = match.group("info").strip().split(" ")[0].lower()
        code = match.group("body")
        if not code.strip():
            continue
        blocks.append(CodeBlock(source, number, info, LANGUAGE_ALIASES.get(info, ""), code.rstrip() + "\n"))
    return blocks
