"""Helpers for the reward-model app tests (the tiny-model fixtures live in tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
