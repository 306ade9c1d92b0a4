"""Self-paced sample selection, the LGL paper's baselines (Cheng et al. 2019, Sec. 3, Table 1):

- SPL (Kumar et al. 2010, Eq. 2 and 4): v_i = 1 if L_i < lambda, else 0; lambda grows every epoch
  so harder samples join until the whole training set is used;
- SPL_INV (LGL paper Sec. 5.1): the inverse, hardest first: v_i = 1 if L_i > lambda, lambda
  shrinks every epoch;
- SPLD (Jiang et al. 2014, self-paced learning with diversity, Eq. 3):
  f(v) = -lambda ||v||_1 - gamma ||v||_{2,1} with groups = classes; closed form per group: sort
  the group's losses ascending, the i-th (1-based) is selected iff
  L_i < lambda + gamma / (sqrt(i) + sqrt(i - 1)).

Alternate convex search: at the start of each epoch v is solved with w fixed (losses of the
current model over the training set, eval mode, no gradient), then w is trained on the selected
samples (the engine's active-subset hook). The pace is either `fraction` (lambda = the loss
quantile that admits a growing fraction of the training set: the paper notes lambda must be set
from observed losses, Sec. 3) or `threshold` (Kumar's lambda <- mu * lambda per epoch).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from .base import Method, TrainerView, register
from .common import per_sample_loss


def spl_select(losses: torch.Tensor, lam: float) -> torch.Tensor:
    """SPL closed form (Eq. 4): v_i = 1 iff L_i < lambda."""
    return losses < lam


def spl_inv_select(losses: torch.Tensor, lam: float) -> torch.Tensor:
    """SPL_INV: v_i = 1 iff L_i > lambda (complex samples first)."""
    return losses > lam


def spld_select(losses: torch.Tensor, groups: torch.Tensor, lam: float, gamma: float) -> torch.Tensor:
    """SPLD closed form (Jiang et al. 2014, Alg. 1): per group, rank losses ascending (i = 1, 2,
    ...) and select iff L_i < lambda + gamma / (sqrt(i) + sqrt(i - 1))."""
    v = torch.zeros_like(losses, dtype=torch.bool)
    for g in torch.unique(groups):
        members = torch.nonzero(groups == g).flatten()
        order = members[torch.argsort(losses[members], stable=True)]
        i = torch.arange(1, len(order) + 1, device=losses.device, dtype=losses.dtype)
        v[order] = losses[order] < lam + gamma / (i.sqrt() + (i - 1).sqrt())
    return v


def fraction_threshold(losses: torch.Tensor, fraction: float, hardest: bool = False) -> float:
    """lambda that admits ceil(fraction * n) samples: the k-th smallest loss (its successor is
    excluded), or for `hardest` the threshold just below the k-th largest."""
    n = len(losses)
    k = min(n, max(1, math.ceil(fraction * n)))
    s = torch.sort(losses).values
    if hardest:
        return float(s[n - k - 1]) if k < n else -math.inf
    return float(s[k]) if k < n else math.inf


class SelfPacedSelection(Method, ABC):
    """Shared pace of SPL / SPL_INV / SPLD; subclasses define `select(losses, groups, epoch)`."""

    defaults = {
        "pace": "fraction",      # fraction (lambda from the loss quantile) | threshold (Kumar)
        "start_fraction": 0.5,   # fraction pace: share of the training set used at epoch 0
        "full_at": 0.5,          # fraction pace: share of training after which all samples are used
        "lambda0": 1.0,          # threshold pace: initial lambda (a cross-entropy value)
        "mu": 1.3,               # threshold pace: lambda *= mu per epoch (SPL_INV: lambda /= mu)
    }
    ranges = {"start_fraction": (0.0, 1.0), "full_at": (0.0, 1.0), "lambda0": (0.0, None),
              "mu": (1.0, None)}
    choices = {"pace": ["fraction", "threshold"]}
    hardest_first = False

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        self.lam = math.nan
        self.n_selected = 0

    def fraction(self, epoch: int) -> float:
        """Share of the training set admitted at `epoch` (linear from start_fraction to 1)."""
        full = max(self.p["full_at"] * self.trainer.epochs, 1e-9)
        s = self.p["start_fraction"]
        return min(1.0, s + (1.0 - s) * epoch / full)

    def threshold(self, epoch: int) -> float:
        mu = self.p["mu"] ** epoch
        return self.p["lambda0"] / mu if self.hardest_first else self.p["lambda0"] * mu

    def lam_at(self, losses: torch.Tensor, epoch: int) -> float:
        if self.p["pace"] == "threshold":
            return self.threshold(epoch)
        return fraction_threshold(losses, self.fraction(epoch), self.hardest_first)

    @abstractmethod
    def select(self, losses: torch.Tensor, groups: torch.Tensor, epoch: int) -> torch.Tensor:
        """v (bool per training sample) from the current losses; sets self.lam."""
    def active_subset(self, epoch: int) -> torch.Tensor:
        idx = self.trainer.data.train_idx
        losses = per_sample_loss(self.trainer, idx)          # w fixed: solve for v
        v = self.select(losses, self.trainer.data.noisy[idx], epoch)
        chosen = idx[v]
        if len(chosen) == 0:                                  # never an empty epoch
            k = min(len(idx), int(self.trainer.cfg["batch_size"]))
            chosen = idx[torch.topk(losses, k, largest=self.hardest_first).indices]
        self.n_selected = int(len(chosen))
        return chosen

    def epoch_metrics(self) -> dict[str, float]:
        return {"spl_lambda": self.lam, "spl_selected": self.n_selected}

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "n_selected": self.n_selected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam, self.n_selected = state["lam"], state["n_selected"]


@register
class SPL(SelfPacedSelection):
    """Self-paced learning: easy (low-loss) samples first."""

    family = "spl"

    def select(self, losses, groups, epoch):
        self.lam = self.lam_at(losses, epoch)
        return spl_select(losses, self.lam)


@register
class SPLInv(SelfPacedSelection):
    """SPL_INV: complex (high-loss) samples first."""

    family = "spl_inv"
    hardest_first = True

    def select(self, losses, groups, epoch):
        self.lam = self.lam_at(losses, epoch)
        return spl_inv_select(losses, self.lam)


@register
class SPLD(SelfPacedSelection):
    """Self-paced learning with diversity: groups = classes, -lambda|v|_1 - gamma|v|_{2,1}."""

    family = "spld"
    defaults = {**SelfPacedSelection.defaults,
                "gamma_ratio": 0.5,  # fraction pace: gamma = gamma_ratio * lambda
                "gamma0": 0.5}       # threshold pace: initial gamma, grown by mu like lambda
    ranges = {**SelfPacedSelection.ranges, "gamma_ratio": (0.0, None), "gamma0": (0.0, None)}

    def select(self, losses, groups, epoch):
        self.lam = self.lam_at(losses, epoch)
        if self.p["pace"] == "threshold":
            gamma = self.p["gamma0"] * self.p["mu"] ** epoch
        else:
            gamma = self.p["gamma_ratio"] * (self.lam if math.isfinite(self.lam) else 0.0)
        return spld_select(losses, groups, self.lam, gamma)
