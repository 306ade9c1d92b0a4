"""The baselines of MentorNet's Tables 2-3, one clearly separated class each:

- Forgetting (Arpit et al., 2017): FullModel with the dropout rate before the classifier
  chosen on the validation split from a grid of keep probabilities (the paper: 0.2-0.9;
  pilot runs in the mentor stage, grid `mentor.forgetting.keep_grid`).
- Self-paced (Kumar et al., 2010): one global lambda, v_i = 1[loss_i < lambda] over the training
  set, lambda x mu per epoch until every sample is admitted (switch: the official code's moving
  average of a mini-batch loss percentile).
- Focal loss (MentorNet Eq. 8): the weight v = (1 - exp(-loss))^gamma without gradient (switch:
  Lin et al.'s loss, the gradient flowing through the factor).
- Reed et al. (2014) bootstrapping, soft and hard (beta).
- Goldberger & Ben-Reuven (2017): a noise-adaptation softmax layer p(y | z) on top of the
  StudentNet's p(z | x), initialised from the confusion matrix of the base network pretrained on
  the noisy labels, trained end to end without weight decay; predictions use p(z | x).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...methods.base import Method, TrainerView, register
from ...methods.common import per_sample_loss
from ...methods.spl import spl_select
from ...registry import ConfigError
from .curriculum import PercentileEMA
from .outputs import stage_entry


# --------------------------------------------------------------------------- Forgetting
@register
class Forgetting(Method):
    """Arpit et al.: dropout searched in a grid (the paper: keep probability 0.2-0.9). With
    `dropout: -1` the rate is 1 - the keep probability of `mentor.forgetting.keep_grid` with the
    best validation accuracy in the mentor stage's pilot runs (seed
    `mentor.forgetting.selection_seed`, never an evaluation seed)."""

    family = "forgetting"
    defaults = {"dropout": -1.0, "selected_val_acc": -1.0}
    ranges = {"dropout": (-1.0, 0.95)}

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
        return {"dropout": self.p["dropout"], "keep_prob": 1.0 - float(self.p["dropout"]),
                "selected_val_acc": self.p["selected_val_acc"]}


# --------------------------------------------------------------------------- Self-paced
@register
class SelfPaced(Method):
    """Self-paced learning (Kumar et al. 2010; MentorNet Eq. 2: v_i = 1[loss_i < lambda]).

    `kumar` (default): alternate convex search with one global lambda. The first
    `burn_in_fraction` of the epochs trains on every sample (Kumar first fits w on all examples;
    20% = MentorNet's own burn-in, Sec. 3.1); then at each epoch start v is
    solved over the training split with w fixed (eval-mode losses), the epoch trains on the
    admitted samples, and lambda <- mu * lambda, until every sample is admitted (from then on all
    are used). lambda_0 = `lambda0` if > 0, else the `init_fraction`-quantile of the training
    losses after the burn-in (Kumar's code: 1/K set so half the samples are valid).
    `moving_percentile` (the official MentorNet code): per mini-batch, lambda = the moving
    average (decay `ema_decay`) of the `percentile`-th mini-batch loss percentile."""

    family = "self_paced"
    defaults = {"threshold": "kumar", "burn_in_fraction": 0.2, "init_fraction": 0.5, "lambda0": -1.0,
                "mu": 1.3, "ema_decay": 0.95, "percentile": 0.7}
    ranges = {"burn_in_fraction": (0.0, 1.0), "init_fraction": (0.0, 1.0), "lambda0": (-1.0, None),
              "mu": (1.0, None), "ema_decay": (0.0, 1.0), "percentile": (0.0, 1.0)}
    choices = {"threshold": ["kumar", "moving_percentile"]}

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        self.lam = math.nan                   # kumar: lambda of the current epoch
        self.all_admitted_epoch = -1          # kumar: first epoch that admitted every sample
        self.n_selected = 0
        self.ema = PercentileEMA(self.p["ema_decay"], self.p["percentile"], trainer.device)
        self.v_sum = torch.zeros((), device=trainer.device)
        self.v_n = 0

    def on_epoch_start(self, epoch: int) -> None:
        self.v_sum = torch.zeros((), device=self.trainer.device)
        self.v_n = 0

    def active_subset(self, epoch: int) -> torch.Tensor | None:
        idx = self.trainer.data.train_idx
        self.n_selected = len(idx)
        burn_in = round(float(self.p["burn_in_fraction"]) * self.trainer.epochs)
        if self.p["threshold"] != "kumar" or epoch < burn_in or self.all_admitted_epoch >= 0:
            return None
        losses = per_sample_loss(self.trainer, idx)          # w fixed: solve for v
        if math.isnan(self.lam):                             # first self-paced epoch: lambda_0
            self.lam = (float(self.p["lambda0"]) if self.p["lambda0"] > 0 else
                        float(torch.quantile(losses, float(self.p["init_fraction"]))))
        else:
            self.lam *= float(self.p["mu"])
        v = spl_select(losses, self.lam)
        self.n_selected = int(v.sum())
        if self.n_selected == len(idx):
            self.all_admitted_epoch = epoch
            return None
        if self.n_selected == 0:                             # never an empty epoch
            v = losses <= losses.min()
            self.n_selected = int(v.sum())
        return idx[v]

    def sample_weights(self, batch: Any, per_sample_loss: torch.Tensor, progress: float):
        if self.p["threshold"] != "moving_percentile":
            return None
        loss = per_sample_loss.detach()
        v = spl_select(loss, self.ema.update(loss)).float()
        self.v_sum += v.sum()
        self.v_n += len(v)
        return v

    def epoch_metrics(self) -> dict[str, float]:
        if self.p["threshold"] == "moving_percentile":
            return {"mean_weight": float(self.v_sum) / max(self.v_n, 1), "lambda": float(self.ema.value)}
        return {"spl_lambda": self.lam, "spl_selected": self.n_selected}

    def summary(self) -> dict[str, Any]:
        return {"threshold": self.p["threshold"], "all_admitted_epoch": self.all_admitted_epoch}

    def state_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "all_admitted_epoch": self.all_admitted_epoch,
                "n_selected": self.n_selected, "ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.lam, self.all_admitted_epoch = state["lam"], state["all_admitted_epoch"]
        self.n_selected = state["n_selected"]
        self.ema.load_state_dict(state["ema"])


# --------------------------------------------------------------------------- Focal loss
def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample (1 - p_t)^gamma * (-log p_t) = [1 - exp(-l)]^gamma * l (Eq. 8 weight times l)."""
    ce = F.cross_entropy(logits.float(), targets, reduction="none")
    return (1.0 - torch.exp(-ce)).clamp_min(0.0) ** gamma * ce


@register
class Focal(Method):
    """Focal loss. `weight` (default, MentorNet Eq. 8, a predefined curriculum): the sample
    weight v = [1 - exp(-l)]^gamma on the cross-entropy, no gradient through v. `loss` (Lin et
    al. 2017's focal loss): the gradient also flows through the factor."""

    family = "focal"
    defaults = {"gamma": 2.0, "mode": "weight"}
    ranges = {"gamma": (0.0, None)}
    choices = {"mode": ["weight", "loss"]}

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
    """theta[z, y] logits of p(y_noisy | z_true) = softmax over y (one row per true class);
    starts from a fixed diagonal until `init_from_confusion` sets it."""

    def __init__(self, num_classes: int, init_diagonal: float):
        super().__init__()
        k = num_classes
        off = (1.0 - init_diagonal) / max(k - 1, 1)
        m = torch.full((k, k), off)
        m.fill_diagonal_(init_diagonal)
        self.theta = nn.Parameter(m.clamp_min(1e-6).log())

    @torch.no_grad()
    def init_from_confusion(self, confusion: torch.Tensor) -> None:
        """Goldberger & Ben-Reuven's start: b = log(row-normalised confusion + 1e-8); a class the
        base network never predicts gets a uniform row."""
        c = confusion.float()
        self.theta.copy_((c / c.sum(1, keepdim=True).clamp_min(1e-12) + 1e-8).log())

    def log_likelihood(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p(y | x) = log sum_z p(z | x) p(y | z), per sample."""
        log_pz = F.log_softmax(logits.float(), 1)                # (B, K)
        log_py_z = F.log_softmax(self.theta, 1)[:, targets].t()  # (B, K): log p(y_i | z)
        return torch.logsumexp(log_pz + log_py_z, 1)


def noisy_confusion(logits: torch.Tensor, noisy: torch.Tensor, soft: bool = False) -> torch.Tensor:
    """C[z_hat, y] over samples: the base network's predicted class (or, `soft`, its predicted
    probabilities) against the noisy label."""
    k = logits.shape[1]
    pred = F.softmax(logits.float(), 1) if soft else F.one_hot(logits.argmax(1), k).float()
    return pred.t() @ F.one_hot(noisy, k).float()


def goldberger_loss(logits: torch.Tensor, targets: torch.Tensor, layer: NoiseAdaptation) -> torch.Tensor:
    return -layer.log_likelihood(logits, targets)


@register
class Goldberger(Method):
    """Noise-adaptation layer (the `simple` model of Goldberger & Ben-Reuven), a submodule of the
    StudentNet (checkpointed with it). `init: confusion` (their code): the first
    `pretrain_fraction` of the epochs trains the base network alone (cross-entropy); then the
    channel is initialised from the confusion of its training-split predictions with the noisy
    labels, the lr schedule restarts over the remaining epochs (their second training run) and
    the base network and channel train end to end. `init: fixed` (the old start): a diagonal of
    `init_diagonal` from the first epoch. The channel has no weight decay (their runs:
    weight_decay None); `channel_weight_decay: true` gives it the run's."""

    family = "goldberger"
    defaults = {"init": "confusion", "pretrain_fraction": 0.5, "confusion": "hard",
                "restart_schedule": True, "init_diagonal": 0.9, "channel_weight_decay": False}
    ranges = {"pretrain_fraction": (0.0, 1.0), "init_diagonal": (0.0, 1.0)}
    choices = {"init": ["confusion", "fixed"], "confusion": ["hard", "soft"]}

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        self.epoch = 0
        self.init_diagonal_mean = float(self.p["init_diagonal"])

    def wrap_model(self, model: nn.Module) -> nn.Module:
        model.add_module("noise_adaptation", NoiseAdaptation(self.trainer.data.num_classes,
                                                             float(self.p["init_diagonal"])))
        self.layer = model.noise_adaptation
        return model

    def optimizer_overrides(self, model: nn.Module) -> list[tuple[list[nn.Parameter], dict[str, Any]]]:
        return [] if self.p["channel_weight_decay"] else [([self.layer.theta], {"weight_decay": 0.0})]

    def pretrain_epochs(self) -> int:
        """Epochs that train the base network alone (0 with `init: fixed` or a 1-epoch run)."""
        e = int(self.trainer.epochs)
        if self.p["init"] == "fixed" or e < 2:
            return 0
        return min(max(1, round(float(self.p["pretrain_fraction"]) * e)), e - 1)

    def phase(self, epoch: int) -> int:
        self.epoch = epoch
        return int(epoch >= self.pretrain_epochs())

    def on_phase_change(self, phase: int) -> None:
        """The base network is trained: start the channel from its noisy-label confusion."""
        tr = self.trainer
        idx = tr.data.train_idx
        logits = tr.predict(idx, int(tr.cfg.get("eval_batch_size", 1024)))
        self.layer.init_from_confusion(noisy_confusion(logits, tr.data.noisy[idx],
                                                       self.p["confusion"] == "soft"))
        self.init_diagonal_mean = float(F.softmax(self.layer.theta.detach(), 1).diagonal().mean())
        if self.p["restart_schedule"]:
            tr.reset_optimizer_state()
            tr.restart_schedule(self.epoch, tr.epochs - self.epoch)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: Any) -> torch.Tensor:
        if self.epoch < self.pretrain_epochs():
            return F.cross_entropy(logits.float(), targets, reduction="none")
        return goldberger_loss(logits, targets, self.layer)

    def summary(self) -> dict[str, Any]:
        with torch.no_grad():
            m = F.softmax(self.layer.theta, 1)
        return {"init": self.p["init"], "pretrain_epochs": self.pretrain_epochs(),
                "init_transition_diagonal_mean": self.init_diagonal_mean,
                "transition_diagonal_mean": float(m.diagonal().mean())}

    def state_dict(self) -> dict[str, Any]:
        return {"init_diagonal_mean": self.init_diagonal_mean}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.init_diagonal_mean = float(state["init_diagonal_mean"])
