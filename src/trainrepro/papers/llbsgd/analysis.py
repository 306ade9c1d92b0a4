"""Pure functions behind the LLb-SGD study's figures, tables and claims (the optimizer they
evaluate is a labelled *reconstruction*; these functions are not).

- `smooth`, `convergence_iteration`: the paper's Fig. 7 stopping rule ("the training process is
  ended when the decrease is no more than 0.1 after 1 000 iterations");
- `iterations_to_target`, `speedup`: the headline claim (iterations to a training-loss target,
  ratio to SGD with a 95% interval over seeds);
- `rel_range`: the robustness claims B2-B4 ((max - min) / mean of a final loss across settings);
- `trajectory_pca`, `plane_grid`: Fig. 8 (iterates projected on their two principal directions).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...results import mean_ci


def smooth(losses: Sequence[float], width: int) -> np.ndarray:
    """Trailing mean over `width` iterations (s[t] = mean of losses[t-width+1 .. t]; the first
    width - 1 entries average what is there)."""
    x = np.asarray(losses, dtype=np.float64)
    if width <= 1 or len(x) == 0:
        return x.copy()
    c = np.cumsum(np.insert(x, 0, 0.0))
    n = np.minimum(np.arange(1, len(x) + 1), width)
    return (c[1:] - c[np.arange(1, len(x) + 1) - n]) / n


def convergence_iteration(losses: Sequence[float], window: int, min_decrease: float,
                          smooth_width: int = 1) -> int | None:
    """First iteration t (1-based count of iterations done) at which the (smoothed) training loss
    has decreased by no more than `min_decrease` over the last `window` iterations:
    s[t - window] - s[t] <= min_decrease. None if the curve never flattens so.

    The paper's rule is window = 1000, min_decrease = 0.1 on its training loss; per-iteration
    mini-batch losses are noisy, so a trailing mean (`smooth_width`) is applied first (our choice).
    """
    s = smooth(losses, smooth_width)
    start = window + max(smooth_width, 1) - 1
    for t in range(start, len(s)):
        if s[t - window] - s[t] <= min_decrease:
            return t + 1
    return None


def iterations_to_target(losses: Sequence[float], target: float, smooth_width: int = 1) -> int | None:
    """Iterations needed until the (smoothed) training loss first reaches `target` (None: never)."""
    s = smooth(losses, smooth_width)
    hit = np.nonzero(s <= target)[0]
    return int(hit[0]) + 1 if len(hit) else None


def speedup(sgd_iters: Sequence[int | None], other_iters: Sequence[int | None],
            budget: int) -> dict[str, float]:
    """Per-seed ratio sgd_iterations / other_iterations (paired by seed) with the 95% t interval
    of `results.mean_ci` (the statistics of every other paper's cells).

    A run that never reaches the target counts as `budget` iterations (so the ratio is a lower
    bound for SGD misses, an upper bound for misses of the other optimizer); `censored` counts
    such runs.
    """
    ratios, censored = [], 0
    for a, b in zip(sgd_iters, other_iters):
        censored += (a is None) + (b is None)
        ratios.append((budget if a is None else a) / (budget if b is None else b))
    m, _, lo, hi = mean_ci(np.asarray(ratios))
    return {"ratio": m, "ci_low": lo, "ci_high": hi, "n": len(ratios), "censored": censored,
            "per_seed": ratios}


def rel_range(values: Sequence[float]) -> float:
    """(max - min) / mean (the spread of a final loss across settings, claims B2-B4)."""
    x = np.asarray(values, dtype=np.float64)
    return float((x.max() - x.min()) / x.mean())


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (claims B5/B6: does a quantity fall as a setting grows?)."""
    from scipy import stats

    return float(stats.spearmanr(x, y).statistic)


def trajectory_pca(trajectories: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Fig. 8: project iterates (each trajectory an array (T_i, P) of flattened weights, all from
    the same network) on the two principal directions of all iterates together.

    Centre = the mean iterate; directions = the top two right singular vectors of the centred
    iterates (unit norm, orthogonal). Returns centre (P,), directions (2, P), coords (list of
    (T_i, 2)), explained (fraction of variance of each direction).
    """
    allx = np.concatenate([np.asarray(t, dtype=np.float64) for t in trajectories])
    centre = allx.mean(axis=0)
    _, sv, vt = np.linalg.svd(allx - centre, full_matrices=False)
    dirs = vt[:2]
    var = sv ** 2
    coords = [(np.asarray(t, dtype=np.float64) - centre) @ dirs.T for t in trajectories]
    return {"centre": centre, "directions": dirs, "coords": coords,
            "explained": var[:2] / var.sum() if var.sum() > 0 else np.zeros(2)}


def plane_grid(coords: Sequence[np.ndarray], n: int = 21, margin: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) grid of the loss-contour plane covering every trajectory with a margin."""
    allc = np.concatenate(coords)
    lo, hi = allc.min(axis=0), allc.max(axis=0)
    pad = (hi - lo) * margin + 1e-8
    return np.linspace(lo[0] - pad[0], hi[0] + pad[0], n), np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)
