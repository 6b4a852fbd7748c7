"""Annotator tools: fact-check search, sandboxed code runner, AI assist, and the evidence they leave."""

from __future__ import annotations
