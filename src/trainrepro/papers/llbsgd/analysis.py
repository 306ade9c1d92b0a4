"""Pure functions behind the LLb-SGD study's figures, tables and claims (the optimizer they
evaluate is a labelled *reconstruction*; these functions are not).

- `smooth`, `convergence_iteration`: the paper's Fig. 7 stopping rule ("the training process is
  ended when the decrease is no more than 0.1 after 1 000 iterations");
- `iterations_to_target`, `speedup`: the headline claim (iterations to a training-loss target,
  ratio to SGD with a 95% interval over seeds);
- `rel_range`, `spearman`: the robustness claims B2-B6 ((max - min) / mean of a final loss across
  settings; rank correlation of a quantity with a setting), each with a 95% interval over seeds
  (`seed_bootstrap`: a percentile bootstrap over seeds, paired across the cells);
- `trajectory_pca`, `plane_grid`: Fig. 8 (iterates projected on their two principal directions).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats as sps

from ...results import load_index, read_record, record_path
from ...stats import bootstrap_ci, mean_ci
from .params import settings

T_INTERVAL = "95% t-interval over seeds of the per-seed ratio, paired by seed (stats.mean_ci)"
BOOTSTRAP = ("95% percentile bootstrap over seeds (stats.bootstrap_ci, 2000 resamples): a resample "
             "draws seeds with replacement, the same draw for every cell, and recomputes the cell means")


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
    if len(ratios) < 2:  # one seed decides nothing: an infinite interval
        lo, hi = -np.inf, np.inf
    return {"ratio": m, "ci_low": lo, "ci_high": hi, "n": len(ratios), "censored": censored,
            "per_seed": ratios}


def estimate(value: float, lo: float, hi: float, n: int, interval: str, **extra: Any) -> dict[str, Any]:
    """A claim scalar with its 95% interval ({value, lo, hi}: report/claims.py decides on the
    interval), the number of seeds behind it and how the interval was computed."""
    return {"value": value, "lo": lo, "hi": hi, "n_seeds": n, "interval": interval, **extra}


def rel_range(values: Sequence[float]) -> float:
    """(max - min) / mean (the spread of a final loss across settings, claims B2-B4)."""
    x = np.asarray(values, dtype=np.float64)
    return float((x.max() - x.min()) / x.mean())


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (claims B5/B6: does a quantity fall as a setting grows?); 0 when
    y is constant (no ordering at all, rather than scipy's NaN)."""
    if np.ptp(np.asarray(y, dtype=np.float64)) == 0:
        return 0.0
    return float(sps.spearmanr(x, y).statistic)


def seed_matrix(cells: Sequence[Sequence[dict[str, Any]]], value: Callable[[dict[str, Any]], float]) -> np.ndarray:
    """(cells, seeds) array of value(run) over the seeds that every cell ran with status ok."""
    per = [{r["seed"]: value(r) for r in rs if r["status"] == "ok"} for rs in cells]
    common = sorted(set.intersection(*(set(p) for p in per))) if per else []
    return np.array([[p[s] for s in common] for p in per], dtype=np.float64).reshape(len(per), len(common))


def seed_bootstrap(values: np.ndarray, statistic: Callable[[np.ndarray], float]) -> dict[str, Any]:
    """statistic(cell means) with its 95% interval over seeds (`BOOTSTRAP`); `values` is
    (metrics, cells, seeds) and statistic gets the (metrics, cells) means. With < 2 seeds or
    < 2 cells the interval is infinite (nothing is decided)."""
    n = values.shape[-1]
    if n == 0 or values.shape[1] < 2:
        return estimate(None, -np.inf, np.inf, n, BOOTSTRAP)
    v, lo, hi = bootstrap_ci(np.arange(n), lambda idx: statistic(values[..., idx.astype(int)].mean(-1)))
    return estimate(v, lo, hi, n, BOOTSTRAP)


def loss_spread(values: np.ndarray) -> dict[str, Any]:
    """Claims B2-B4: max over the metrics of rel_range across the cells, with its interval."""
    return seed_bootstrap(values, lambda means: max(rel_range(m) for m in means))


def trend(setting: Sequence[float], values: np.ndarray) -> dict[str, Any]:
    """Claims B5/B6: Spearman correlation of a setting with the cells' mean, with its interval."""
    return seed_bootstrap(values[None], lambda means: spearman(setting, means[0]))


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


# --- the study's analysis (stage train_llbsgd, after the runs) ---------------------------------
# Block tags of the llbsgd study (params.yaml): "<sub-study>_<value>".
SUBSTUDIES = {"grid": "Table 2 / Fig. 5: lr grid per optimizer", "lr": "Fig. 7: initial lr (LLb-SGD)",
              "bs": "Table 3: batch size (LLb-SGD)", "init": "Table 4: initialisation (LLb-SGD)",
              "saddle": "Fig. 8: trajectories near a saddle"}


def load_study_runs(results_root: str | Path, study: str = "llbsgd") -> list[dict[str, Any]]:
    """Every run of the study's index with its record's config, last history row and traces."""
    out = []
    for r in load_index(results_root, study)["runs"]:
        rec = read_record(record_path(r["run_dir"], results_root))
        cfg = rec.get("config", {})
        sub, _, value = r.get("tag", "").partition("_")
        out.append({**r, "sub": sub, "value": value, "status": rec.get("status"),
                    "final": rec.get("final", {}), "summary": rec.get("method_summary", {}),
                    "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"),
                    "optimizer": cfg.get("optimizer"),
                    "init": (cfg.get("model_args") or {}).get("init", "default")})
    return out


def _stat(values: list[float], bounds: tuple[float, float] | None = None) -> dict[str, float]:
    m, sd, lo, hi = mean_ci(np.asarray(values, dtype=float), bounds=bounds)
    return {"mean": m, "std": sd, "ci_low": lo, "ci_high": hi, "n": len(values)}


def cell_stats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Final train loss (last epoch's mean mini-batch loss), validation / test loss and test
    accuracy over the ok seeds of one cell."""
    ok = [r for r in runs if r["status"] == "ok"]
    out = {"seeds": [r["seed"] for r in ok], "n_diverged": sum(r["status"] == "diverged" for r in runs)}
    for key in ("train_loss", "val_loss", "test_loss", "test_acc"):
        bounds = (0.0, 1.0) if key.endswith("acc") else (0.0, float("inf"))
        out[key] = _stat([r["final"][key] for r in ok], bounds) if ok else None
    return out


def layer_scale(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Per layer: its final LLb-SGD rate / the initial lr (history `lr[<layer>]`), mean over the
    ok seeds: how far the reconstruction's rates decayed."""
    per = [{k[3:-1]: v / r["lr"] for k, v in r["final"].items() if k.startswith("lr[")}
           for r in runs if r["status"] == "ok" and r["lr"]]
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]} if per else {}


def _by(runs: list[dict[str, Any]], *keys: str) -> dict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return groups


def mean_trace(runs: list[dict[str, Any]], key: str) -> list[float]:
    traces = [r["summary"].get(key) or [] for r in runs if r["status"] == "ok"]
    n = min((len(t) for t in traces), default=0)
    return np.mean([t[:n] for t in traces], axis=0).tolist() if n else []


def select_lr(grid: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per optimizer (method): the grid lr with the lowest mean final VALIDATION loss over its ok
    seeds (cells with a diverged seed are not eligible); test numbers are never looked at."""
    out: dict[str, dict[str, Any]] = {}
    for (method,), runs in _by(grid, "method").items():
        cells = []
        for (lr,), rs in _by(runs, "lr").items():
            st = cell_stats(rs)
            if st["val_loss"] is not None and st["n_diverged"] == 0 and np.isfinite(st["val_loss"]["mean"]):
                cells.append((st["val_loss"]["mean"], lr, st, rs))
        if cells:
            _, lr, st, rs = min(cells, key=lambda c: c[0])
            out[method] = {"lr": lr, "grid": sorted({r["lr"] for r in runs}), "stats": st, "runs": rs,
                           "optimizer": rs[0]["optimizer"]}
    return out


def study_analysis(results_root: str | Path, s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """convergence.json (claim B1 / sub-study g), robustness.json (B2-B6), tables.json (Tables
    2-4, Fig. 7) and curves.json (Figs. 5, 6, 8) of the llbsgd study.

    Sub-studies a-e are analysed per (dataset, model) setting, so that the lr of one network is
    never chosen on another's runs (the paper profile has CIFAR-10 ResNet-34 and ResNet-50 and four
    ImageNet networks). The top level of each file is the study's first setting (in the order of
    the study's blocks: quick digits/small_cnn, paper cifar10/resnet34), named under `setting`,
    which the claims read; with more than one setting, `by_setting` holds every setting's own
    analysis (the report's tables show them all). Fig. 8's saddle runs are one separate setting."""
    runs = load_study_runs(results_root)
    saddle = [r for r in runs if r["sub"] == "saddle"]
    settings: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        if r["sub"] in SUBSTUDIES and r["sub"] != "saddle":
            settings.setdefault(f"{r['dataset']}/{r['model']}", []).append(r)
    per = {k: setting_analysis(rs, s) for k, rs in settings.items()}
    if not per:
        per = {"": setting_analysis([], s)}
    head = next(iter(per))
    out = {name: {"setting": head, **doc} for name, doc in per[head].items()}
    out["curves"]["fig8"] = {f"{r['value']}:{r['method']}": r["summary"].get("plane")
                             for r in saddle if r["status"] == "ok" and r["summary"].get("plane")}
    if len(per) > 1:
        for name in ("convergence", "robustness", "tables"):
            out[name]["by_setting"] = {k: doc[name] for k, doc in per.items()}
    return out


def setting_analysis(runs: list[dict[str, Any]], s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Sub-studies a-e over the runs of one (dataset, model) setting (study_analysis)."""
    sub = {k: [r for r in runs if r["sub"] == k] for k in SUBSTUDIES}
    chosen = select_lr(sub["grid"])
    smooth_w = int(s["smooth_iterations"])
    # (g) iterations to the target training loss, ratio to naive SGD paired by seed
    conv: dict[str, Any] = {"target_loss": s["target_loss"], "smooth_iterations": smooth_w,
                            "note": "LLb-SGD is a labelled reconstruction (equations lost)",
                            "optimizers": {}}
    iters: dict[str, dict[int, int | None]] = {}
    budget = 0
    for method, c in chosen.items():
        per = {r["seed"]: iterations_to_target(r["summary"].get("loss_trace", []), s["target_loss"], smooth_w)
               for r in c["runs"] if r["status"] == "ok"}
        budget = max([budget] + [len(r["summary"].get("loss_trace", [])) for r in c["runs"]])
        iters[method] = per
        conv["optimizers"][method] = {"lr": c["lr"], "iterations": per}
    ref = next((m for m in chosen if chosen[m]["optimizer"] == "sgd"), None)
    for method in chosen:
        if ref is None:
            break
        seeds = sorted(set(iters[ref]) & set(iters[method]))
        conv["optimizers"][method]["speedup_vs_sgd"] = speedup([iters[ref][k] for k in seeds],
                                                               [iters[method][k] for k in seeds], budget)
    llb = next((m for m in chosen if chosen[m]["optimizer"] == "llbsgd"), None)
    if llb is not None and ref is not None:
        sp = conv["optimizers"][llb]["speedup_vs_sgd"]
        conv["speedup_vs_sgd"] = estimate(sp["ratio"], sp["ci_low"], sp["ci_high"], sp["n"], T_INTERVAL,
                                          censored=sp["censored"])
    # (c) Fig. 7: LLb-SGD over initial lrs (grid cells of LLb-SGD + the extra lr cells)
    lr_runs = sub["lr"] + [r for r in sub["grid"] if r["optimizer"] == "llbsgd"]
    window, min_dec = int(s["window"]), float(s["min_decrease"])

    def conv_iter(r: dict[str, Any]) -> int | None:
        return convergence_iteration(r["summary"].get("loss_trace", []), window, min_dec, smooth_w)

    def final(key: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: r["final"][key]

    def both_losses(cells: list[list[dict[str, Any]]]) -> np.ndarray:
        return np.stack([seed_matrix(cells, final("train_loss")), seed_matrix(cells, final("test_loss"))])

    lr_cells = sorted(_by(lr_runs, "lr").items())
    fig7 = []
    for (lr,), rs in lr_cells:
        it = [conv_iter(r) for r in rs if r["status"] == "ok"]
        fig7.append({"lr": lr, "iterations": it, "censored": sum(i is None for i in it),
                     "layer_scale": layer_scale(rs),
                     "iterations_mean": float(np.mean([budget if i is None else i for i in it])) if it else None,
                     **cell_stats(rs)})
    robust: dict[str, Any] = {"note": "LLb-SGD is a labelled reconstruction (equations lost)"}
    if len(lr_cells) >= 2:
        cells = [rs for _, rs in lr_cells]
        iters = seed_matrix(cells, lambda r: budget if conv_iter(r) is None else conv_iter(r))
        robust["initial_lr"] = {"final_loss_rel_range": loss_spread(both_losses(cells)),
                                "iterations_spearman": trend([lr for (lr,), _ in lr_cells], iters)}
    # (d) Table 3 and (e) Table 4 (the bs-64 / default cells are the grid's LLb-SGD cell at fixed_lr)
    at_fixed = [r for r in sub["grid"] if r["optimizer"] == "llbsgd" and r["lr"] == s["fixed_lr"]]
    bs_cells = sorted(_by(sub["bs"] + at_fixed, "batch_size").items())
    t3 = [{"batch_size": bs, **cell_stats(rs)} for (bs,), rs in bs_cells]
    if len(bs_cells) >= 2:
        cells = [rs for _, rs in bs_cells]
        robust["batch_size"] = {
            "final_train_loss_rel_range": loss_spread(seed_matrix(cells, final("train_loss"))[None]),
            "test_loss_spearman": trend([bs for (bs,), _ in bs_cells], seed_matrix(cells, final("test_loss")))}
    init_cells = sorted(_by(sub["init"], "init").items())
    t4 = [{"init": v, **cell_stats(rs)} for (v,), rs in init_cells]
    if len(init_cells) >= 2:
        robust["init"] = {"final_loss_rel_range": loss_spread(both_losses([rs for _, rs in init_cells]))}
    # (a) Table 2 and the curves
    t2 = [{"method": m, "optimizer": c["optimizer"], "lr": c["lr"], "grid": c["grid"], **c["stats"]}
          for m, c in chosen.items()]
    steps = next((r["summary"].get("steps_per_epoch") for r in runs if r["summary"].get("steps_per_epoch")), 0)
    curves: dict[str, Any] = {"fig5": {m: mean_trace(c["runs"], "loss_trace") for m, c in chosen.items()},
                              "steps_per_epoch": steps, "trace_every": 1}
    if llb is not None:
        rate = mean_trace(chosen[llb]["runs"], "rate_trace")
        a0 = chosen[llb]["lr"]
        epochs_t = [i / max(steps, 1) for i in range(len(rate))]
        curves["fig6"] = {"lr0": a0, "k": s["baseline_k"], "t_unit": "epochs (iterations / steps per epoch)",
                          "llbsgd_mean_rate": rate,
                          **decay_curves(a0, float(s["baseline_k"]), epochs_t)}
    tables = {"table2": t2, "fig7": fig7, "table3": t3, "table4": t4}
    return {"convergence": conv, "robustness": robust, "tables": tables, "curves": curves}


def decay_curves(a0: float, k: float, t: Sequence[float]) -> dict[str, list[float]]:
    """The paper's Fig. 6 baselines: 1/t decay a0 / (1 + k t) and exponential a0 exp(-k t)."""
    tt = np.asarray(t, dtype=np.float64)
    return {"inverse_t": (a0 / (1 + k * tt)).tolist(), "exponential": (a0 * np.exp(-k * tt)).tolist()}


def claim_scalars(results_root: str | Path, params: Any) -> dict[str, dict[str, Any]]:
    """The files claims B1-B6 read (results/llbsgd/{convergence,robustness}.json) from a results
    tree (registry.Paper.claim_scalars: reading sensitivity)."""
    out = study_analysis(results_root, settings(params.raw, params.scale))
    return {k: out[k] for k in ("convergence", "robustness")}
