"""Fixtures for the pure ML tests: synthetic preference records and tiny models built in-process (no downloads,
no database). Models are built once per session; each test copies nothing and writes only under its tmp_path."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

QUESTIONS = [
    "How do I boil an egg?",
    "What is the capital of France?",
    "Can you help me write a poem about the sea?",
    "How can I learn to program in Python?",
    "What should I cook for dinner tonight?",
    "Why is the sky blue?",
    "How do I fix a flat bicycle tyre?",
    "Tell me how to plant tomatoes.",
]
GOOD = [
    "Sure, here is a careful and helpful answer with clear steps.",
    "Happy to help: first gather what you need, then follow these steps carefully.",
    "Great question, here is a clear and honest explanation.",
]
BAD = ["No idea, go away.", "I will not help you with that, stop asking.", "Whatever, figure it out yourself."]


def make_records(n: int, seed: int = 0, subsets: tuple[str, ...] = ("alpha", "beta")) -> list[dict[str, Any]]:
    """``n`` hh-form pairs where the chosen answer is polite and the rejected one rude (a learnable signal).
    Every third prompt is two-turn; answers get a random-length tail so sequence lengths vary."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = rng.choice(QUESTIONS)
        if i % 3 == 0:
            prompt = f"\n\nHuman: {rng.choice(QUESTIONS)}\n\nAssistant: {rng.choice(GOOD)}\n\nHuman: {q}\n\nAssistant:"
        else:
            prompt = f"\n\nHuman: {q}\n\nAssistant:"
        tail = " ".join(rng.choice(["really", "very", "so", "quite"]) for _ in range(rng.randint(0, 12)))
        out.append(
            {
                "id": f"r{i}",
                "prompt": prompt,
                "chosen": f"{rng.choice(GOOD)} {tail}".strip(),
                "rejected": f"{rng.choice(BAD)} {tail}".strip(),
                "subset": subsets[i % len(subsets)],
            }
        )
    return out


def corpus(records: list[dict[str, Any]]) -> list[str]:
    """Texts to train the tiny tokenizers on."""
    return [r["prompt"] + " " + r["chosen"] + " " + r["rejected"] for r in records] + ["Human: Assistant: System:"]


@pytest.fixture(autouse=True)
def _fast_settings() -> None:
    """Overrides the project-level autouse fixture of the same name: these tests touch no Django settings."""
    return None


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    """The CI box has 2 cores shared with other jobs: keep torch at 2 intra-op threads at most."""
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def records() -> list[dict[str, Any]]:
    """64 synthetic pairs (subsets alpha / beta)."""
    return make_records(64)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]) -> Path:
    """A tiny random BERT reward model directory (2 layers, hidden 32, WordPiece, no chat template)."""
    from rewardmodel.ml.backbones import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), corpus(records))


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]) -> Path:
    """A tiny random Qwen3 reward model directory (2 layers, hidden 32, ChatML template, no pad token)."""
    from rewardmodel.ml.backbones import build_tiny_decoder

    return build_tiny_decoder(tmp_path_factory.mktemp("tiny-qwen"), corpus(records), arch="qwen3")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]]) -> Path:
    """A tiny random Llama reward model directory without a chat template (plain Human/Assistant form)."""
    from rewardmodel.ml.backbones import build_tiny_decoder

    return build_tiny_decoder(tmp_path_factory.mktemp("tiny-llama"), corpus(records), arch="llama", chat_template=None)
