"""Bradley-Terry loss against hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from rewardmodel.ml.loss import bt_loss, pair_stats


def test_loss_matches_hand_computation() -> None:
    r_chosen = torch.tensor([2.0, 0.0, -1.0])
    r_rejected = torch.tensor([1.0, 0.0, 1.0])
    # -log sigmoid(d) = log(1 + exp(-d)) for d = 1, 0, -2
    expected = (math.log1p(math.exp(-1.0)) + math.log(2.0) + math.log1p(math.exp(2.0))) / 3
    assert bt_loss(r_chosen, r_rejected).item() == pytest.approx(expected, rel=1e-6)


def test_margin_is_subtracted_inside_the_sigmoid() -> None:
    r_chosen, r_rejected = torch.tensor([3.0]), torch.tensor([1.0])
    expected = math.log1p(math.exp(-(3.0 - 1.0 - 0.5)))
    assert bt_loss(r_chosen, r_rejected, torch.tensor([0.5])).item() == pytest.approx(expected, rel=1e-6)


def test_loss_is_float32_and_differentiable_for_bf16_inputs() -> None:
    r_chosen = torch.tensor([0.5, 1.5], dtype=torch.bfloat16, requires_grad=True)
    loss = bt_loss(r_chosen, torch.zeros(2, dtype=torch.bfloat16))
    loss.backward()
    assert loss.dtype == torch.float32
    assert r_chosen.grad is not None and (r_chosen.grad < 0).all()


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        bt_loss(torch.zeros(2), torch.zeros(3))


def test_pair_stats_counts_ties_as_wrong() -> None:
    stats = pair_stats(torch.tensor([1.0, 0.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 3.0, -1.0]))
    assert stats["accuracy"] == pytest.approx(0.5)
    assert stats["mean_margin"] == pytest.approx((1 + 0 - 1 + 1) / 4)
