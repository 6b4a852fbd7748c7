"""Embeddings with the packaged MiniLM: shape, normalisation, order, parity with sentence-transformers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from rewardmodel.ml.embed import Embedder, embed_records, mean_pool

TEXTS = ["how do I boil an egg", "a much longer text about reward models " * 30, "cats", "boiling eggs"]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(device="cpu", batch_size=2)


def test_embeddings_are_normalised_float32_in_input_order(embedder: Embedder) -> None:
    out = embedder.embed(TEXTS)
    assert out.shape == (4, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    alone = np.stack([embedder.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(out, alone, atol=1e-5)
    sims = out @ out.T
    assert sims[0, 3] > sims[0, 2]  # eggs are closer to eggs than to cats
    assert embedder.embed([]).shape == (0, 384)


def test_matches_sentence_transformers_reference_values(embedder: Embedder) -> None:
    """Reference: SentenceTransformer(<packaged MiniLM dir>).encode(texts, normalize_embeddings=True) with
    sentence-transformers 6.2.0 (first 6 dims, and the cosine of the two texts), recorded once so the test does not
    need that package."""
    out = embedder.embed(["how do I boil an egg", "cats"])
    expected = np.array(
        [
            [0.02317, 0.003305, -0.021183, 0.020953, 0.003917, -0.004813],
            [0.036069, 0.02693, 0.007677, 0.067368, -0.087426, -0.017131],
        ]
    )
    np.testing.assert_allclose(out[:, :6], expected, atol=2e-5)
    assert float(out[0] @ out[1]) == pytest.approx(0.028653, abs=1e-4)


def test_mean_pool_ignores_padding() -> None:
    import torch

    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask, normalize=False).tolist() == [[2.0, 0.0]]


def test_embed_records_uses_conversation_and_attributes() -> None:
    recs = [{"prompt": "\n\nHuman: how do I boil an egg?\n\nAssistant:", "chosen": "a", "rejected": "b"}] * 2
    out = embed_records(recs, [{"task": "cooking"}, {"task": "legal advice"}])
    assert out.shape == (2, 384) and not np.allclose(out[0], out[1])


def test_key_names_the_encoder_and_its_token_limit(embedder: Embedder, tmp_path: Any) -> None:
    from rewardmodel.ml.embed import embedder_key

    assert embedder.key == Embedder(device="cpu", batch_size=2).key  # stable across loads
    assert f"-L{embedder.max_length}-" in embedder.key
    config = embedder.model.config.to_json_string()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.safetensors").write_bytes(b"x" * 10)
    key = embedder_key(tmp_path / "a", config, 256)
    assert key != embedder_key(tmp_path / "a", config, 128)  # another token limit
    (tmp_path / "a" / "model.safetensors").write_bytes(b"x" * 11)
    assert key != embedder_key(tmp_path / "a", config, 256)  # other weights


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_embeddings_in_bf16_match_cpu(embedder: Embedder) -> None:
    gpu = Embedder(device="cuda", batch_size=2)
    out = gpu.embed(TEXTS)
    assert out.dtype == np.float32 and out.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    cosines = (out * embedder.embed(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.99, cosines  # bf16 autocast: close to the fp32 CPU vectors, not equal
