"""Bradley-Terry reward models: pure torch/transformers code, no Django (imported only inside task bodies).

Importing this package is cheap (torch is imported by the submodules). Public API:

* ``config.RewardTrainingConfig`` — every hyperparameter; ``to_dict`` / ``from_dict`` JSON round trip.
* ``train.train(config, train_records, eval_records, callbacks) -> TrainResult`` — training with resume;
  ``python -m rewardmodel.ml.train --config cfg.json`` (also under ``torchrun``).
* ``sharded`` — FSDP2 (``parallelism="fsdp"``): sharding, DCP checkpoints, ``consolidate_checkpoint``.
* ``launch.launch`` — a distributed run as a child process group (torchrun), followed through an events file.
* ``callbacks`` — ``on_log(step, total_steps, metrics)`` protocol; return False to cancel.
* ``infer.Scorer`` / ``infer.score_pairs`` / ``infer.score_file`` — batched, length-sorted scoring.
* ``evaluate.evaluate`` / ``evaluate.evaluate_scores`` — accuracy overall / per subset, margin, best-of-N.
* ``embed.Embedder`` / ``embed.embed_texts`` / ``embed.embed_records`` — normalised MiniLM embeddings.
* ``export.export_onnx`` / ``quantize_onnx_int8`` / ``quantize_torch_int8`` / ``OnnxScorer`` — deployment forms.
* ``backbones.default_backbone_path`` / ``build_tiny_bert`` / ``build_tiny_decoder`` — models without downloads.
* ``data`` — hh transcript parsing, tokenisation with truncation, collator, length-grouped sampler.
"""

from __future__ import annotations
