"""Predefined curriculum (Eq. 5/7), the loss moving average lambda and the epoch percentage."""
from __future__ import annotations

from typing import Any

import torch


def pd_weight(loss: torch.Tensor, lambda1: torch.Tensor | float, lambda2: float) -> torch.Tensor:
    """Eq. 7: argmin_v v*l + G(v) of Eq. 5 -> 1[l <= lambda1] if lambda2 = 0, else
    clip(1 - (l - lambda1) / lambda2, 0, 1)."""
    if lambda2 == 0:
        return (loss <= lambda1).to(loss.dtype)
    return (1.0 - (loss - lambda1) / lambda2).clamp(0.0, 1.0)


PD_DEFAULTS: dict[str, Any] = {
    "schedule": "paper",     # paper: Eq. 7 with fixed lambda2 at every epoch
                             # code: v = 1 up to `code_burn_in_epoch`, then self-paced
                             # (lambda2 = 0) until `code_switch_epoch`, then lambda2 = `lambda2`
    "lambda2": 1.0,          # Eq. 5's lambda2 (the code's late phase uses 1.0)
    "code_burn_in_epoch": 18,
    "code_switch_epoch": 90,
}


def pd_targets(loss: torch.Tensor, loss_diff: torch.Tensor, epoch: torch.Tensor,
               cfg: dict[str, Any]) -> torch.Tensor:
    """Target weights of the predefined curriculum for MentorNet inputs; lambda1 = the
    moving average lambda = loss - (loss - lambda)."""
    c = {**PD_DEFAULTS, **cfg}
    lambda1 = loss - loss_diff
    if c["schedule"] == "paper":
        return pd_weight(loss, lambda1, float(c["lambda2"]))
    hard = pd_weight(loss, lambda1, 0.0)
    soft = pd_weight(loss, lambda1, float(c["lambda2"]))
    out = torch.where(epoch >= c["code_switch_epoch"], soft, hard)
    return torch.where(epoch <= c["code_burn_in_epoch"], torch.ones_like(out), out)


class PercentileEMA:
    """lambda: exponential moving average of the p-th percentile (nearest rank) of the mini-batch loss,
    updated every batch, kept on the device (no host sync). The first batch initialises it
    (the official code starts from 0; with decay 0.95 that biases lambda low for ~50 steps)."""

    def __init__(self, decay: float, percentile: float, device: torch.device | str = "cpu"):
        self.decay = float(decay)
        self.q = float(percentile)
        self.value = torch.zeros((), device=device)
        self.steps = 0

    def update(self, loss: torch.Tensor) -> torch.Tensor:
        # Nearest-rank percentile, as tf.contrib.distributions.percentile (interpolation
        # "nearest") in the official code; kthvalue is a selection, not a sort.
        flat = loss.detach().float().reshape(-1)
        p = torch.kthvalue(flat, int(round(self.q * (flat.numel() - 1))) + 1).values
        # lerp(value, p, 1 - decay) = decay * value + (1 - decay) * p, in one kernel
        self.value = p if self.steps == 0 else torch.lerp(self.value, p, 1.0 - self.decay)
        self.steps += 1
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value.detach().clone(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state["value"].to(self.value.device)
        self.steps = int(state["steps"])


def epoch_percent(progress: float) -> int:
    """Training progress in [0, 1) -> the integer epoch percentage 0..99 MentorNet sees."""
    return min(99, max(0, int(progress * 100)))
