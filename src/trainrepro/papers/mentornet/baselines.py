"""The baselines of MentorNet's Tables 2-3, one clearly separated class each:

- Forgetting (Arpit et al., 2017): FullModel with the dropout rate before the classifier
  chosen on the validation split from a grid (pilot runs in the mentor stage).
- Self-paced (Kumar et al., 2010): in methods/spl.py, the self-paced family.
- Focal loss (Lin et al., 2017; MentorNet Eq. 8): weight (1 - exp(-loss))^gamma.
- Reed et al. (2014) bootstrapping, soft and hard (beta).
- Goldberger & Ben-Reuven (2017): a noise-adaptation softmax layer p(y | z) on top of the
  StudentNet's p(z | x), trained end to end; predictions use p(z | x).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...methods.base import Method, register
from ...registry import ConfigError
from .outputs import stage_entry


# --------------------------------------------------------------------------- Forgetting
@register
class Forgetting(Method):
    """Arpit et al.: dropout searched in a grid (the paper: keep probability 0.2-0.9). With
    `dropout: -1` the rate is the grid value with the best validation accuracy in the mentor
    stage's pilot runs (seed `mentor.forgetting.selection_seed`, never an evaluation seed)."""

    family = "forgetting"
    defaults = {"dropout": -1.0, "grid": [0.1, 0.3, 0.5, 0.7], "selected_val_acc": -1.0}
    ranges = {"dropout": (-1.0, 0.95)}

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str) -> dict[str, Any]:
        out = super().validate_params(params, where)
        if not out["grid"] or any(not isinstance(g, (int, float)) or not 0 <= g < 1 for g in out["grid"]):
            raise ConfigError(f"{where}.grid: expected a non-empty list of dropout rates in [0, 1)")
        return out

    @classmethod
    def resolve_run(cls, spec: Any, results_root: str | Path) -> dict[str, Any]:
        if float(spec.method_params.get("dropout", -1.0)) >= 0:
            return {}
        sel = stage_entry(results_root, "forgetting_selection.json", spec.cell)
        return {"dropout": float(sel["dropout"]), "selected_val_acc": float(sel["val_acc"])}

    def wrap_model(self, model: nn.Module) -> nn.Module:
        rate = float(self.p["dropout"])
        if rate < 0:
            raise ConfigError("forgetting.dropout: -1 (select) but no selection was resolved; "
                              "run through the train stage after the mentor stage")
        if not hasattr(model, "dropout"):
            raise ConfigError(f"forgetting: model {type(model).__name__} has no `dropout` slot")
        model.dropout = nn.Dropout(rate) if rate > 0 else nn.Identity()
        return model

    def summary(self) -> dict[str, Any]:
        return {"dropout": self.p["dropout"], "selected_val_acc": self.p["selected_val_acc"]}


# --------------------------------------------------------------------------- Focal loss
def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample (1 - p_t)^gamma * (-log p_t) = [1 - exp(-l)]^gamma * l (Eq. 8 weight times l)."""
    ce = F.cross_entropy(logits.float(), targets, reduction="none")
    return (1.0 - torch.exp(-ce)).clamp_min(0.0) ** gamma * ce


@register
class Focal(Method):
    """Focal loss. `loss` mode (Lin et al.): the gradient flows through the factor.
    `weight` mode (MentorNet Eq. 8, a predefined curriculum): v = [1 - exp(-l)]^gamma, no gradient."""

    family = "focal"
    defaults = {"gamma": 2.0, "mode": "loss"}
    ranges = {"gamma": (0.0, None)}
    choices = {"mode": ["loss", "weight"]}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any) -> torch.Tensor:
        if self.p["mode"] == "loss":
            return focal_loss(logits, targets, float(self.p["gamma"]))
        return F.cross_entropy(logits.float(), targets, reduction="none")

    def sample_weights(self, batch: Any, per_sample_loss: torch.Tensor, progress: float):
        if self.p["mode"] == "weight":
            return (1.0 - torch.exp(-per_sample_loss.detach())) ** float(self.p["gamma"])
        return None


# --------------------------------------------------------------------------- Reed
def reed_loss(logits: torch.Tensor, targets: torch.Tensor, beta: float, mode: str,
              detach_target: bool = False) -> torch.Tensor:
    """Reed et al. 2014: -sum_k [beta * q_k + (1 - beta) * t_k] log p_k with q the (noisy)
    one-hot label and t = p (soft) or one-hot(argmax p) (hard)."""
    logp = F.log_softmax(logits.float(), 1)
    q = F.one_hot(targets, logits.shape[1]).float()
    if mode == "soft":
        t = logp.exp()
        if detach_target:
            t = t.detach()
    else:
        t = F.one_hot(logp.argmax(1), logits.shape[1]).float()
    return -((beta * q + (1.0 - beta) * t) * logp).sum(1)


@register
class Reed(Method):
    """Reed bootstrapping; Reed et al. use beta = 0.95 (soft) and 0.8 (hard)."""

    family = "reed"
    defaults = {"mode": "soft", "beta": 0.95, "detach_target": False}
    ranges = {"beta": (0.0, 1.0)}
    choices = {"mode": ["soft", "hard"]}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any) -> torch.Tensor:
        return reed_loss(logits, targets, float(self.p["beta"]), self.p["mode"],
                         bool(self.p["detach_target"]))


# --------------------------------------------------------------------------- Goldberger
class NoiseAdaptation(nn.Module):
    """theta[z, y] logits of p(y_noisy | z_true) = softmax over y (one row per true class)."""

    def __init__(self, num_classes: int, init_diagonal: float):
        super().__init__()
        k = num_classes
        off = (1.0 - init_diagonal) / max(k - 1, 1)
        m = torch.full((k, k), off)
        m.fill_diagonal_(init_diagonal)
        self.theta = nn.Parameter(m.clamp_min(1e-6).log())

    def log_likelihood(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(y | x) = log sum_z p(z | x) p(y | z), per sample."""
        log_pz = F.log_softmax(logits.float(), 1)                # (B, K)
        log_py_z = F.log_softmax(self.theta, 1)[:, targets].t()  # (B, K): log p(y_i | z)
        return torch.logsumexp(log_pz + log_py_z, 1)


def goldberger_loss(logits: torch.Tensor, targets: torch.Tensor, layer: NoiseAdaptation) -> torch.Tensor:
    return -layer.log_likelihood(logits, targets)


@register
class Goldberger(Method):
    """Noise-adaptation layer (the `simple` model of Goldberger & Ben-Reuven): the layer is a
    submodule of the StudentNet, so the optimizer, weight decay and checkpoints include it."""

    family = "goldberger"
    defaults = {"init_diagonal": 0.9}
    ranges = {"init_diagonal": (0.0, 1.0)}

    def wrap_model(self, model: nn.Module) -> nn.Module:
        model.add_module("noise_adaptation", NoiseAdaptation(self.trainer.data.num_classes,
                                                             float(self.p["init_diagonal"])))
        self.layer = model.noise_adaptation
        return model

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any) -> torch.Tensor:
        return goldberger_loss(logits, targets, self.layer)

    def summary(self) -> dict[str, Any]:
        with torch.no_grad():
            m = F.softmax(self.layer.theta, 1)
        return {"transition_diagonal_mean": float(m.diagonal().mean())}
