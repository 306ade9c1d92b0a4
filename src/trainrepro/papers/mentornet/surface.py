"""The learned curriculum surface (Fig. 4), the Proposition-1 metric and the robust objective
rho(l) = int_0^l g_m (Fig. 2)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .curriculum import pd_targets
from .net import MentorNet


@torch.no_grad()
def surface(net: MentorNet, loss: np.ndarray, diff: np.ndarray, epoch: int) -> np.ndarray:
    """Weights V[i, j] = g_m(loss_i, diff_j, epoch)."""
    L, D = np.meshgrid(loss, diff, indexing="ij")
    dev = next(net.parameters()).device
    v = net(torch.as_tensor(L.ravel(), dtype=torch.float32, device=dev),
            torch.as_tensor(D.ravel(), dtype=torch.float32, device=dev), epoch)
    return v.cpu().numpy().reshape(L.shape)


def surface_grid(cfg: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n = int(cfg["points"])
    return (np.linspace(0.0, float(cfg["loss_max"]), n),
            np.linspace(float(cfg["diff_min"]), float(cfg["diff_max"]), n))


def metric_epochs(cfg: dict[str, Any]) -> list[int]:
    """Epoch percentages the Proposition-1 metric evaluates: Fig. 4's panels plus 0, 50, 99."""
    return sorted(set(int(e) for e in cfg["epochs"]) | {0, 50, 99})


@torch.no_grad()
def prop1_violations(net: MentorNet, cfg: dict[str, Any]) -> dict[str, Any]:
    """Proposition 1's condition, g_m decreasing in the loss at FIXED lambda: for each lambda of
    linspace(0, lambda_max, points) and each epoch, the weights g_m(l, l - lambda, epoch) along
    the loss grid; the fraction of adjacent loss pairs at which the weight INCREASES by more
    than `tolerance` (0 = never increases). Both inputs move with the loss, as in rho(l)."""
    loss = torch.as_tensor(surface_grid(cfg)[0], dtype=torch.float32)
    lams = torch.linspace(0.0, float(cfg["lambda_max"]), int(cfg["points"]))
    dev = next(net.parameters()).device
    L = loss[None, :].expand(len(lams), -1).reshape(-1).to(dev)
    D = (loss[None, :] - lams[:, None]).reshape(-1).to(dev)
    epochs = metric_epochs(cfg)
    bad = total = 0
    for e in epochs:
        v = net(L, D, e).reshape(len(lams), len(loss))
        bad += int(((v[:, 1:] - v[:, :-1]) > float(cfg["tolerance"])).sum())
        total += v[:, 1:].numel()
    return {"violations_fixed_lambda": bad / max(total, 1), "pairs": total, "epochs": epochs,
            "lambdas": [round(float(x), 6) for x in lams]}


@torch.no_grad()
def pd_surface_error(net: MentorNet, pd: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """max |g_m - Eq. 7| of a PD mentor over the surface grid (lambda = loss - diff >= 0) at
    every epoch percentage 0..99, and the worst epoch."""
    loss, diff = surface_grid(cfg)
    L, D = np.meshgrid(loss, diff, indexing="ij")
    valid = (L - D) >= 0
    lv, dv = torch.as_tensor(L[valid]), torch.as_tensor(D[valid])
    errs = []
    for e in range(100):
        target = pd_targets(lv, dv, torch.full_like(lv, e, dtype=torch.long), pd).numpy()
        errs.append(float(np.abs(surface(net, loss, diff, e)[valid] - target).max()))
    return {"max_abs_error": max(errs), "worst_epoch": int(np.argmax(errs)),
            "epochs_above_0.05": int(sum(x > 0.05 for x in errs))}


@torch.no_grad()
def robust_objective(net: MentorNet, loss: np.ndarray, lam: float, epoch: int) -> np.ndarray:
    """rho(l) = int_0^l g_m(x, x - lambda, epoch) dx (trapezoid rule), Proposition 1."""
    dev = next(net.parameters()).device
    x = torch.as_tensor(loss, dtype=torch.float32, device=dev)
    v = net(x, x - lam, epoch).cpu().numpy()
    steps = np.diff(loss) * (v[1:] + v[:-1]) / 2
    return np.concatenate([[0.0], np.cumsum(steps)])


def figure_mentors(mentors: dict[str, dict[str, Any]]) -> list[str]:
    """The mentors a figure shows: PD and, of per-seed DD mentors, those of the lowest run seed
    (one per dataset, StudentNet and noise rate)."""
    seeds = [m.get("run_seed") for m in mentors.values() if m.get("run_seed") is not None]
    first = min(seeds) if seeds else None
    return sorted(n for n, m in mentors.items() if m.get("run_seed") in (None, first))


def plot_surfaces(nets: dict[str, MentorNet], cfg: dict[str, Any], path: str | Path) -> None:
    """One 3-D surface per (mentor, epoch): weight over (loss - lambda, loss), like Fig. 4."""
    import matplotlib  # heavy optional import: plotting only, kept out of training workers

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss, diff = surface_grid(cfg)
    epochs = [int(e) for e in cfg["epochs"]]
    rows = max(len(nets), 1)
    fig = plt.figure(figsize=(4.0 * len(epochs), 3.6 * rows), dpi=100)
    D, L = np.meshgrid(diff, loss)
    for r, (name, net) in enumerate(nets.items()):
        for c, e in enumerate(epochs):
            ax = fig.add_subplot(rows, len(epochs), r * len(epochs) + c + 1, projection="3d")
            ax.plot_surface(D, L, surface(net, loss, diff, e), cmap="viridis", linewidth=0,
                            antialiased=False)
            ax.set_xlabel("loss - lambda")
            ax.set_ylabel("loss")
            ax.set_zlabel("weight")
            ax.set_zlim(0, 1)
            ax.set_title(f"{name}, epoch {e}%", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
