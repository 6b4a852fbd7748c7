"""Bradley-Terry pairwise loss (OpenRLHF ``PairWiseLoss``, TRL ``RewardTrainer.compute_loss``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None) -> torch.Tensor:
    """Bradley-Terry negative log-likelihood of the labelled preferences.

    ``loss = -logsigmoid(r_chosen - r_rejected - margin).mean()``; with ``margin=None`` this is the paper's loss
    ``-log σ(r(x, y_w) - r(x, y_l))`` and nothing else.

    Args:
        r_chosen: (B,) rewards of the chosen responses.
        r_rejected: (B,) rewards of the rejected responses.
        margin: optional (B,) non-negative margins (Llama-2 style); broadcast scalars work too.

    Returns:
        A 0-d tensor, the mean over the B pairs. Computed in float32 whatever the input dtype.
    """
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen {tuple(r_chosen.shape)} and r_rejected {tuple(r_rejected.shape)} differ in shape")
    diff = r_chosen.float() - r_rejected.float()
    if margin is not None:
        diff = diff - margin.to(diff.device, torch.float32)
    return -F.logsigmoid(diff).mean()


@torch.no_grad()
def pair_stats(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> dict[str, float]:
    """Batch metrics logged next to the loss (TRL ``compute_loss``).

    Args:
        r_chosen, r_rejected: (B,) rewards.

    Returns:
        ``accuracy``: fraction with r_chosen > r_rejected (ties count as wrong); ``mean_margin``: mean of
        r_chosen - r_rejected.
    """
    diff = r_chosen.float() - r_rejected.float()
    return {"accuracy": (diff > 0).float().mean().item(), "mean_margin": diff.mean().item()}
