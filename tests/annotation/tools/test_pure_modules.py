"""The sandbox, LLM client, web-search client and readers are pure Python: no Django, no torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_architecture import imports_of

ROOT = Path(__file__).resolve().parents[3]
PURE = ["sandbox.py", "llm.py", "searxng.py", "highlight.py", "corpus.py", "codeblocks.py"]


@pytest.mark.parametrize("name", PURE)
def test_tool_module_imports_no_django(name: str) -> None:
    assert imports_of(ROOT / "annotation" / "tools" / name) & {"django", "rest_framework", "celery", "torch"} == set()
