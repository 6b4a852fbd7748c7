"""ONNX export and INT8 quantisation parity against the torch model (tolerances as documented in ml/export.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardmodel.ml.export import OnnxScorer, export_onnx, quantize_onnx_int8, quantize_torch_int8
from rewardmodel.ml.infer import Scorer


def _rewards(scores: dict) -> np.ndarray:
    return np.concatenate([scores["r_chosen"], scores["r_rejected"]])


def _assert_int8_close(ref: np.ndarray, got: np.ndarray) -> None:
    assert np.corrcoef(ref, got)[0, 1] >= 0.98
    assert np.abs(ref - got).max() <= 0.25 * np.ptp(ref)  # see the parity note in rewardmodel/ml/export.py


@pytest.mark.parametrize("model_name", ["tiny_bert", "tiny_qwen"])
def test_onnx_fp32_and_int8_match_torch(
    model_name: str, records: list[dict], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    model_dir: Path = request.getfixturevalue(model_name)
    onnx_path = export_onnx(model_dir, tmp_path, max_length=64)
    int8_path = quantize_onnx_int8(onnx_path)
    assert onnx_path.exists() and int8_path.exists() and (tmp_path / "scorer_config.json").exists()
    recs = records[:24]
    ref = _rewards(Scorer.from_pretrained(model_dir, max_length=64, device="cpu").score_pairs(recs))
    fp32 = _rewards(OnnxScorer(tmp_path, batch_size=5).score_pairs(recs))  # other batch shapes than the trace
    np.testing.assert_allclose(fp32, ref, atol=1e-4, rtol=1e-3)
    _assert_int8_close(ref, _rewards(OnnxScorer(tmp_path, int8=True).score_pairs(recs)))


def test_torch_dynamic_int8_matches_fp32(tiny_qwen: Path, records: list[dict]) -> None:
    scorer = Scorer.from_pretrained(tiny_qwen, max_length=64, device="cpu")
    ref = _rewards(scorer.score_pairs(records[:24]))
    quantized = quantize_torch_int8(scorer.model)
    got = _rewards(Scorer(quantized, scorer.tokenizer, max_length=64).score_pairs(records[:24]))
    _assert_int8_close(ref, got)
    np.testing.assert_allclose(_rewards(scorer.score_pairs(records[:24])), ref)  # original left untouched
