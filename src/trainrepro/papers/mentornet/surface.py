"""The learned curriculum surface (Fig. 4), the Proposition-1 metric and the robust objective
rho(l) = int_0^l g_m (Fig. 2)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def nonincreasing_violations(net: MentorNet, cfg: dict[str, Any]) -> dict[str, float]:
    """Proposition 1's condition: the fraction of adjacent loss pairs on the grid (loss - lambda
    and epoch held fixed, lambda = loss - diff >= 0 at both points) where the weight INCREASES
    with the loss by more than `tolerance`; 0 = the weight never increases with the loss."""
    loss, diff = surface_grid(cfg)
    tol = float(cfg["tolerance"])
    bad = total = 0
    epochs = sorted(set(int(e) for e in cfg["epochs"]) | {0, 50, 99})
    for e in epochs:
        v = surface(net, loss, diff, e)
        lam = loss[:, None] - diff[None, :]
        valid = (lam[:-1] >= 0) & (lam[1:] >= 0)
        inc = (v[1:] - v[:-1]) > tol
        bad += int((inc & valid).sum())
        total += int(valid.sum())
    return {"nonincreasing_fraction_violations": bad / max(total, 1), "pairs": total,
            "epochs": epochs}


@torch.no_grad()
def robust_objective(net: MentorNet, loss: np.ndarray, lam: float, epoch: int) -> np.ndarray:
    """rho(l) = int_0^l g_m(x, x - lambda, epoch) dx (trapezoid rule), Proposition 1."""
    dev = next(net.parameters()).device
    x = torch.as_tensor(loss, dtype=torch.float32, device=dev)
    v = net(x, x - lam, epoch).cpu().numpy()
    steps = np.diff(loss) * (v[1:] + v[:-1]) / 2
    return np.concatenate([[0.0], np.cumsum(steps)])


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
