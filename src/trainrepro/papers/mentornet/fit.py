"""Fitting a MentorNet: PD (MSE between the sigmoid output and Eq. 7 targets on a grid, as the
official code) and DD (binary cross-entropy to v* = 1 iff noisy label == true label)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .curriculum import pd_targets
from .net import MentorNet


def fit_mentor(net: MentorNet, features: dict[str, torch.Tensor], target: torch.Tensor,
               objective: str, fit: dict[str, Any], steps: int | None = None) -> dict[str, float]:
    """Adam on mini-batches of (loss, loss_diff, epoch) -> target; returns final fit statistics.
    Uses its own generator (seed `fit.seed`) so the caller's RNG streams are untouched."""
    dev = next(net.parameters()).device
    loss, diff, epoch = (features[k].to(dev) for k in ("loss", "loss_diff", "epoch"))
    target = target.float().to(dev)
    n = len(target)
    if n == 0:
        raise ValueError("no features to fit the mentor on")
    steps = int(fit["steps"] if steps is None else steps)
    bs = min(int(fit["batch_size"]), n)
    gen = torch.Generator().manual_seed(int(fit["seed"]))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=float(fit["lr"]), foreach=True)
    sched = torch.optim.lr_scheduler.StepLR(opt, int(fit["lr_decay_steps"]), float(fit["lr_decay"]))
    net.mark_fitted(epoch)  # these epoch inputs read their own embedding row from now on
    net.clear_cache()  # the weights are about to change
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (bs,), generator=gen).to(dev)
        out = net.logits(loss[idx], diff[idx], epoch[idx])
        if objective == "bce":
            obj = F.binary_cross_entropy_with_logits(out, target[idx])
        elif objective == "mse":
            obj = F.mse_loss(torch.sigmoid(out), target[idx])
        else:
            raise ValueError(f"unknown mentor objective {objective!r}")
        opt.zero_grad(set_to_none=True)
        obj.backward()
        if float(fit["grad_clip"]) > 0:
            torch.nn.utils.clip_grad_norm_(params, float(fit["grad_clip"]))
        opt.step()
        sched.step()
    net.clear_cache()
    net.eval()
    with torch.no_grad():
        v = net(loss, diff, epoch)
        stats = {"n": n, "steps": steps,
                 "mse": float(F.mse_loss(v, target)),
                 "bce": float(F.binary_cross_entropy(v.clamp(1e-6, 1 - 1e-6), target))}
        if objective == "bce":
            pos, neg = target > 0.5, target <= 0.5
            stats["accuracy"] = float(((v > 0.5) == pos).float().mean())
            stats["mean_weight_clean"] = float(v[pos].mean()) if pos.any() else float("nan")
            stats["mean_weight_noisy"] = float(v[neg].mean()) if neg.any() else float("nan")
    return stats


def pd_grid(pd: dict[str, Any]) -> dict[str, torch.Tensor]:
    """MentorNet inputs on a grid of (loss, loss - lambda, epoch) with lambda = loss - diff >= 0,
    at every epoch percentage 0..99: each epoch has its own embedding row, and a row the grid
    leaves out would keep its random start."""
    m = int(pd["grid_points"])
    loss = torch.linspace(0.0, float(pd["grid_loss_max"]), m)
    diff = torch.linspace(-float(pd["grid_diff_max"]), float(pd["grid_diff_max"]), m)
    epochs = torch.arange(100, dtype=torch.float32)
    L, D, E = torch.meshgrid(loss, diff, epochs, indexing="ij")
    L, D, E = L.reshape(-1), D.reshape(-1), E.reshape(-1)
    keep = (L - D) >= 0
    return {"loss": L[keep], "loss_diff": D[keep], "epoch": E[keep].long()}


def fit_pd_mentor(net: MentorNet, pd: dict[str, Any], fit: dict[str, Any]) -> dict[str, float]:
    """MentorNet PD: approximate the predefined curriculum of Eq. 5/7 (no clean labels); `pd.fit`
    overrides `fit` for this one mentor (its grid is larger than a DD mentor's data)."""
    feats = pd_grid(pd)
    target = pd_targets(feats["loss"], feats["loss_diff"], feats["epoch"], pd)
    return fit_mentor(net, feats, target, "mse", {**fit, **pd.get("fit", {})})
