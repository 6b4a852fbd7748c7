"""Deployment forms: ONNX (CPU serving through onnxruntime) and INT8 dynamic quantisation.

* :func:`export_onnx` writes ``out_dir/model.onnx`` (inputs ``input_ids`` / ``attention_mask`` (batch, seq) int64,
  output ``score`` (batch,) float32; batch and sequence axes dynamic) plus the tokenizer and ``scorer_config.json``.
  It uses the TorchScript exporter (``dynamo=False``; the dynamo exporter needs the optional ``onnxscript``
  package) with eager attention, which traces cleanly for BERT- and Qwen3/Llama-style models.
* :func:`quantize_onnx_int8` applies onnxruntime's dynamic quantisation (int8 weights of MatMul/Gemm, activations
  quantised per batch at run time) to an exported model.
* :func:`quantize_torch_int8` applies ``torch.ao.quantization.quantize_dynamic`` to the ``nn.Linear`` layers of a
  loaded model (CPU only).
* :class:`OnnxScorer` is a :class:`rewardmodel.ml.infer.Scorer` running the ONNX file (same tokenisation,
  truncation, length sorting and batching as the torch scorer).

Parity (checked in ``tests/rewardmodel/ml/test_export.py`` on tiny BERT and Qwen3 models): FP32 ONNX matches torch
to ``|Δ| <= 1e-4 + 1e-3·|r|`` per reward (float32 kernels differ only in summation order; measured ~1e-7). INT8 is
lossy; the tests require a Pearson correlation >= 0.98 with FP32 rewards and ``|Δ| <= 0.25 · (max r - min r)`` over
the test batch (quantisation error scales with activation ranges, so the bound is relative to the reward spread; a tiny
random BERT's spread is about 0.3, and its 7-bit-weight error reached 0.16 of it in a full-suite run).
Measured on the MiniLM RM trained by ``bench/rm_quality.py`` (150 shared pairs, max_length 128): onnxruntime INT8
with per-channel weights, reward correlation 0.997 and the same preference as FP32 on 93% of pairs; torch dynamic
INT8, 0.986 and 81%. The pairs that flip are those with near-zero margins, so check the INT8 model's accuracy on
D_gold before serving it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewardmodel.ml.infer import DEFAULT_MAX_LENGTH, Scorer

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
SCORER_CONFIG = "scorer_config.json"


class _RewardOnly(torch.nn.Module):
    """Wraps a sequence classifier so that forward returns the (batch,) reward tensor only."""

    def __init__(self, model: Any) -> None:
        """``model``: a 1-label ``*ForSequenceClassification``."""
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 ids and mask -> (B,) float32 rewards."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float()


def export_onnx(
    model_dir: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    opset_version: int = 17,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> Path:
    """Export a checkpoint directory (None = packaged MiniLM) to ``out_dir/model.onnx``; return its path.

    The tokenizer is saved next to it and ``scorer_config.json`` records ``max_length`` (clamped to the model's
    position limit) and the pad id, so :class:`OnnxScorer` needs nothing else. Runs on CPU in float32. Export a
    trained checkpoint: a bare backbone (e.g. the packaged MiniLM) gets a freshly initialised score head on load.
    """
    from rewardmodel.ml.infer import model_position_limit
    from rewardmodel.ml.modeling import load_reward_model

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_reward_model(model_dir, device="cpu", attn_implementation="eager")
    model.eval()
    limit = model_position_limit(model, tokenizer)
    max_length = min(max_length, limit) if limit else max_length
    # A dummy batch of 2 sequences of different lengths so that no axis is specialised to 1 and the pad path
    # is traced; the pad id is never a real token inside the dummy.
    real = [i for i in range(len(tokenizer)) if i != tokenizer.pad_token_id][:8]
    ids = torch.tensor([real, real[:5] + [tokenizer.pad_token_id] * 3], dtype=torch.long)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.long)
    path = out / ONNX_FILE
    with torch.no_grad():
        torch.onnx.export(
            _RewardOnly(model),
            (ids, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["score"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "score": {0: "batch"},
            },
            opset_version=opset_version,
            dynamo=False,
        )
    tokenizer.save_pretrained(out)
    (out / SCORER_CONFIG).write_text(
        json.dumps({"max_length": max_length, "pad_token_id": tokenizer.pad_token_id}, indent=2) + "\n",
        encoding="utf-8",
    )
    return path


def quantize_onnx_int8(
    onnx_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None, *, per_channel: bool = True
) -> Path:
    """Dynamic INT8 quantisation of an exported model (onnxruntime, QInt8 weights); returns the new file's path.

    ``out_path`` defaults to ``model.int8.onnx`` beside the input; tokenizer and scorer config are shared.
    Weights use 7 bits (``reduce_range``) so the file scores right on CPUs without VNNI too; per-channel weight
    scales (default) keep rewards much closer to FP32 than one scale per tensor (on a trained
    MiniLM RM, measured with 8-bit weights on an earlier machine: reward correlation 0.997 vs 0.987, same
    preference on 93% vs 85% of pairs).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = Path(onnx_path)
    dst = Path(out_path) if out_path else src.with_name(ONNX_INT8_FILE)
    # reduce_range: 7-bit weights. x86 CPUs without VNNI (AVX2 only) compute u8 x s8 products with 16-bit
    # intermediate sums that saturate on full-range weights (onnxruntime's quantization docs, "the x86 saturation
    # issue"); the file may run on any CPU, so it is quantised for the weakest.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel, reduce_range=True)
    if dst.parent != src.parent:
        for f in src.parent.iterdir():
            if f.suffix != ".onnx" and f.is_file():
                shutil.copy2(f, dst.parent / f.name)
    return dst


def quantize_torch_int8(model: Any) -> Any:
    """Return a copy of ``model`` with ``nn.Linear`` layers dynamically quantised to INT8 (CPU inference only).

    Weights are int8 with per-output-channel scales (``per_channel_dynamic_qconfig``), activations are quantised
    per batch at run time; use it with ``Scorer(quantized, tokenizer)`` on CPU. The input model is left untouched.
    """
    import copy

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    return quantize_dynamic(
        copy.deepcopy(model).cpu().eval(), {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
    )


class OnnxScorer(Scorer):
    """Score with an exported ONNX file through onnxruntime (CPU by default).

    ``OnnxScorer(out_dir)`` uses ``model.onnx``; ``OnnxScorer(out_dir, int8=True)`` uses ``model.int8.onnx``.
    The API is :class:`rewardmodel.ml.infer.Scorer`'s (``score``, ``score_pairs``, ``score_file``).
    """

    def __init__(
        self,
        export_dir: str | os.PathLike[str],
        *,
        int8: bool = False,
        onnx_file: str | None = None,
        providers: list[str] | None = None,
        intra_op_num_threads: int = 0,
        batch_size: int = 64,
        max_batch_tokens: int = 16384,
        max_length: int | None = None,
    ) -> None:
        """Load tokenizer, scorer config and an onnxruntime session from ``export_dir``.

        ``intra_op_num_threads`` 0 lets onnxruntime choose; ``max_length`` None = the exported config's.
        """
        import onnxruntime as ort

        from rewardmodel.ml.modeling import load_tokenizer

        root = Path(export_dir)
        cfg = json.loads((root / SCORER_CONFIG).read_text(encoding="utf-8"))
        tokenizer = load_tokenizer(root)
        options = ort.SessionOptions()
        if intra_op_num_threads:
            options.intra_op_num_threads = intra_op_num_threads
        file = onnx_file or (ONNX_INT8_FILE if int8 else ONNX_FILE)
        self.session = ort.InferenceSession(str(root / file), options, providers=providers or ["CPUExecutionProvider"])
        super().__init__(
            None,
            tokenizer,
            max_length=max_length or int(cfg["max_length"]),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            bf16=False,
        )

    def score_padded(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(b, L) int64 ids and mask -> (b,) float32 rewards from the ONNX session."""
        (scores,) = self.session.run(["score"], {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(scores, dtype=np.float32).reshape(-1)
