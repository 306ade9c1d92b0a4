"""The alternation study's analyses on run records (no plotting): the learning rate chosen on
validation (`select_lr`), Fig. 3's iterations to reach SGD's final error and the saving, and the
MaskT readings of the I-alternation runs. Every scalar a claim reads is {value, lo, hi, n}: the
mean over runs with its 95% t-interval (`interval`), so a claim on it can be inconclusive.

Iterations are optimizer steps: epochs x ceil(n_active / batch_size) of each run's history.
For each (dataset, model, seed) with an SGD run and a run of the compared method:
    target     SGD's final test error (last epoch) + `tol`
    it_sgd     iterations SGD needs to first reach test error <= target
    it_method  iterations the method needs to first reach it; a run that never reaches it counts
               with all its iterations (`reached` false), so its ratio is a lower bound
    ratio      it_method / it_sgd; saving = 1 - ratio (the paper: 30-40% fewer, ratio 0.6-0.7)
tol defaults to 0.01, claim A1's tolerance for "similar performance" (the paper: "reaches similar
performance to SGD in 30%-40% fewer iterations").
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...io import read_json
from ...report.tables import fmt_mean_std
from ...results import load_runs
from ...stats import mean_ci
from .alternation import MASKT_READINGS

BASELINE = "sgd"
MASKT_PAPER_DROP = (0.0409, 0.0461)  # Table 2: MaskT costs 4.09-4.61 points
FIG3_METHODS = ("i_alt", "b_alt")


def iterations_to_reach(history: pd.DataFrame, target_error: float, batch_size: int,
                        column: str = "test_acc") -> float:
    """Optimizer steps until the run's `column` error first reaches `target_error` (NaN: never)."""
    h = history.sort_values("epoch")
    steps = np.ceil(h["n_active"].to_numpy(float) / batch_size).cumsum()
    err = 1.0 - h[column].to_numpy(float)
    hit = np.nonzero(err <= target_error + 1e-12)[0]
    return float(steps[hit[0]]) if len(hit) else float("nan")


def run_batch_size(run_dir: str | Path) -> int:
    rec = read_json(Path(run_dir) / "metrics.json")
    return int(rec["config"]["batch_size"])


TOL = 0.01


def fig3_iterations(runs: pd.DataFrame, tol: float = TOL,
                    methods: tuple[str, ...] = FIG3_METHODS) -> pd.DataFrame:
    """One row per (dataset, model, seed, method) that has an SGD twin (see the module doc)."""
    rows = []
    ok = runs[runs["status"] == "ok"]
    for (ds, model, seed), g in ok.groupby(["dataset", "model", "seed"], sort=True):
        base = g[g["method"] == BASELINE]
        if base.empty:
            continue
        b = base.iloc[0]
        hb = pd.read_csv(Path(b["run_dir"]) / "history.csv")
        target = 1.0 - float(hb.sort_values("epoch")["test_acc"].iloc[-1]) + tol
        it_sgd = iterations_to_reach(hb, target, run_batch_size(b["run_dir"]))
        for m in methods:
            r = g[g["method"] == m]
            if r.empty:
                continue
            r = r.iloc[0]
            hm = pd.read_csv(Path(r["run_dir"]) / "history.csv")
            bs = run_batch_size(r["run_dir"])
            it_m = iterations_to_reach(hm, target, bs)
            reached = not math.isnan(it_m)
            if not reached:
                it_m = float(np.ceil(hm["n_active"].to_numpy(float) / bs).sum())
            ratio = it_m / it_sgd if it_sgd and not math.isnan(it_sgd) else float("nan")
            rows.append({"dataset": ds, "model": model, "seed": seed, "method": m, "tol": tol,
                         "target_error": target, "it_sgd": it_sgd, "it_method": it_m,
                         "reached": reached, "ratio": ratio, "saving_pct": 100.0 * (1.0 - ratio)})
    return pd.DataFrame(rows, columns=["dataset", "model", "seed", "method", "tol", "target_error",
                                       "it_sgd", "it_method", "reached", "ratio", "saving_pct"])


def interval(values: np.ndarray | list[float]) -> dict[str, Any] | None:
    """{value, lo, hi, n}: the mean of per-run values with its 95% t-interval (stats.mean_ci;
    infinite bounds below 2 finite values, so a claim on it stays inconclusive); None if none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return None
    m, _, lo, hi = mean_ci(v)
    lo, hi = (-math.inf, math.inf) if len(v) < 2 else (lo, hi)
    return {"value": m, "lo": lo, "hi": hi, "n": int(len(v))}


def iteration_summary(per_seed: pd.DataFrame) -> dict[str, Any]:
    """The scalars claims A4 / A5 read: per method the mean ratio over settings and seeds with
    its 95% t-interval over those per-run ratios ({value, lo, hi, n}; runs that never reach the
    target enter with their total iterations and are counted in *_never_reached)."""
    out: dict[str, Any] = {"definition": __doc__.split("\n\n", 1)[1].strip()}
    for m in FIG3_METHODS:
        d = per_seed[per_seed["method"] == m]
        key = "iteration_ratio" if m == "i_alt" else f"{m}_iteration_ratio"
        out[key] = interval(d["ratio"].to_numpy(float))
        out[f"{m}_never_reached"] = int((~d["reached"].astype(bool)).sum())
        out[f"{m}_n"] = int(len(d))
        out[f"{m}_saving_pct"] = None if out[key] is None else 100.0 * (1.0 - out[key]["value"])
    return out


def select_lr(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The learning rate chosen on validation (ALL-CNN's recipe: lr from {0.25, 0.1, 0.05, 0.01};
    the paper profile runs one cell per grid lr, tagged `grid_<lr>`).

    Per (dataset, model, noise, method) the cell with the highest mean validation accuracy over
    its ok seeds wins; a cell with a diverged or failed seed is eligible only when no cell is
    complete. Test accuracy is never looked at. Returns (the runs of the chosen cells, one row
    per candidate cell: tag, n, val_acc mean, chosen); a group with one cell keeps it."""
    rows, keep = [], []
    for key, g in runs.groupby(["dataset", "model", "noise", "method"], sort=False):
        cands = []
        for cell, c in g.groupby("cell", sort=False):
            ok = c[c["status"] == "ok"]
            val = ok["val_acc"].to_numpy(float)
            score = float(np.nanmean(val)) if np.isfinite(val).any() else -math.inf
            tag = cell[len(f"{key[0]}-{key[1]}-n{key[2]:g}-{key[3]}"):].lstrip("-")
            cands.append({"dataset": key[0], "model": key[1], "noise": key[2], "method": key[3],
                          "cell": cell, "tag": tag, "n": len(ok), "val_acc": score,
                          "complete": len(ok) == len(c)})
        best = max(cands, key=lambda c: (c["complete"], c["val_acc"]))
        keep.append(best["cell"])
        rows += [{**c, "chosen": c is best} for c in cands]
    return runs[runs["cell"].isin(keep)], pd.DataFrame(rows)


def selected_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the alternation tables and claims see: those of the lr chosen on validation."""
    return select_lr(runs)[0]


def maskt_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The MaskT readings (test accuracy, final weights) of every ok I-alternation run."""
    rows = []
    for _, r in runs[(runs["status"] == "ok")].iterrows():
        path = Path(r["run_dir"]) / "metrics.json"
        if not path.exists():
            continue
        s = read_json(path).get("method_summary") or {}
        if not s.get("maskt"):
            continue
        rows.append({"dataset": r["dataset"], "model": r["model"], "method": r["method"],
                     "seed": r["seed"], "maskt_reading": s.get("maskt_reading"),
                     **{f"maskt_{k}": v for k, v in s["maskt"].items()},
                     "alternation_epochs": " ".join(map(str, s.get("alternation_epochs", []))),
                     "mask_bytes_per_example": s.get("mask_bytes_per_example")})
    return pd.DataFrame(rows)


def maskt_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model): test accuracy of the final I-alternation weights under each MaskT
    reading, and the drop from the standard test (the paper: 4.09-4.61 points)."""
    m = maskt_rows(runs[runs["method"] == "i_alt"])
    if m.empty:
        return m
    rows = []
    for (ds, model), g in m.groupby(["dataset", "model"], sort=False):
        row: dict[str, Any] = {"dataset": ds, "model": model, "n": len(g)}
        std = g["maskt_standard"].to_numpy(float)
        for r in MASKT_READINGS:
            v = g[f"maskt_{r}"].to_numpy(float)
            row[f"{r} acc"] = fmt_mean_std(*mean_ci(v)[:2])
            if r != "standard":
                row[f"{r} drop (points)"] = 100.0 * float(np.mean(std - v))
        rows.append(row)
    return pd.DataFrame(rows)


def maskt_verdicts(table: pd.DataFrame) -> dict[str, Any]:
    """Which reading's mean drop lies in (or nearest to) the paper's 4-5 points."""
    if table.empty:
        return {}
    drops = {r: float(table[f"{r} drop (points)"].mean()) for r in MASKT_READINGS if r != "standard"}
    lo, hi = 100 * MASKT_PAPER_DROP[0], 100 * MASKT_PAPER_DROP[1]
    dist = {r: 0.0 if lo - 1 <= d <= hi + 1 else min(abs(d - lo), abs(d - hi)) for r, d in drops.items()}
    best = min(dist, key=dist.get)
    return {"maskt_drop_points": drops, "maskt_closest_reading": best,
            "maskt_reproduces_4_5_points": [r for r, d in dist.items() if d == 0.0]}


def maskt_drop(runs: pd.DataFrame) -> dict[str, Any]:
    """Claim A3's scalar: per I-alternation run, standard test accuracy minus MaskT accuracy of
    the final weights under the run's `maskt` reading; their mean with its 95% t-interval."""
    mt = maskt_rows(runs[runs["method"] == "i_alt"])
    if mt.empty:
        return {}
    reading = str(mt["maskt_reading"].iloc[0])
    return {"maskt_reading": reading,
            "maskt_drop": interval((mt["maskt_standard"] - mt[f"maskt_{reading}"]).to_numpy(float))}


def scalars(runs: pd.DataFrame) -> dict[str, Any]:
    """The alternation claims' scalars that come from run records (results/alternation/
    scalars.json; the stage adds the timed ratios of overhead.study_time_ratios)."""
    out = iteration_summary(fig3_iterations(runs))
    out.update(maskt_verdicts(maskt_table(runs)))
    out.update(maskt_drop(runs))
    return out


def claim_scalars(results_root: str | Path, params: Any) -> dict[str, dict[str, Any]]:
    """results/alternation/scalars.json (claims A3, A4, A5, A9) from a results tree
    (registry.Paper.claim_scalars: reading sensitivity); the timed ratios (A9) are the stage's,
    from that tree's scalars.json (they do not depend on a reading's runs)."""
    out = scalars(selected_runs(load_runs(results_root, "alternation")))
    stage = Path(results_root) / "alternation" / "scalars.json"
    if stage.exists():
        out.update({k: v for k, v in read_json(stage).items() if "time_ratio" in k})
    return {"scalars": out}
