"""The LGL toy study (Cheng et al. 2019, Sec. 5.1, Fig. 2 a-i), run through the one engine.

Data: three 2-D Gaussians with identity covariance (`gaussian_blobs`, layouts separable = (g)
and overlapping = (i)), centres from `lgl_toy.centres`. Fig. 2 (g)'s axes (x -2..3, y -3..3)
are narrower than three identity-covariance clouds can fill entirely, so the separable centres
are an equilateral triangle of side 3 centred in those axes (each centre +- 1 sd spans the
x-range): neighbouring clusters touch, so the hardest samples of a cluster lie near the others
(Fig. 2 (h)). (i)'s axes (x -4..4, y -3..4) hold the overlapping triangle of side ~2. Models: fully connected ReLU nets with 1 and 3 hidden layers. Plain
SGD, lr 0.01 fixed, no momentum, no weight decay, mini-batches; one iteration = one batch.

Every method trains the same number of epochs E (enough for `iterations` full-data batches);
SPL / SPL_INV epochs use fewer batches, so their curves end earlier on the iteration axis, and
LGL's first step (two classes) likewise. The engine's per-epoch 'val' evaluation is pointed
at the whole training set here, so the recorded `val_loss` IS the loss on all training data
(the quantity Fig. 2 plots); the held-out points are the 'test' split.

Panels (d, e, f) compare the baseline with LGL's last step, i.e. "when trained on all the
training data" (Sec. 5.1), starting from the weights of the two-class step.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ... import stats
from ...config import TRAIN_DEFAULTS
from ...data.loader import DeviceData
from ...data.prepared import PreparedDataset, normalisation
from ...data.sources import gaussian_blobs
from ...engine import Trainer
from ...io import atomic_write_text, write_json
from ...methods import METHODS
from ...methods.common import per_sample_loss
from ...parallel import run_jobs
from .params import TOY_METHODS


def toy_dataset(layout: str, n_per_class: int, data_seed: int, test_fraction: float,
                centres: list[list[float]] | None = None):
    """An in-memory PreparedDataset of the Gaussians: val split = the training split."""
    x, y = gaussian_blobs(layout, n_per_class, data_seed, centres=centres)
    k = len(np.unique(y))
    rng = np.random.default_rng(data_seed)
    perm = rng.permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, pool = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    xp, yp = x[pool], y[pool]
    train_idx = np.arange(len(yp))
    manifest = {"name": f"toy_{layout}", "num_classes": k, "classes": [f"c{i}" for i in range(k)],
                "normalisation": normalisation(xp, train_idx)}
    return PreparedDataset(name=manifest["name"], manifest=manifest, x_pool=xp, y_pool=yp,
                           x_test=x[test], y_test=y[test], train_idx=train_idx,
                           val_idx=train_idx.copy(), clean_idx=np.zeros(0, dtype=np.int64),
                           noisy_pool=yp.copy(), noise={"kind": "none", "rate": 0.0})


def toy_config(hidden: list[int], epochs: int, seed: int, p: dict[str, Any]) -> dict[str, Any]:

    return {**TRAIN_DEFAULTS, "model": "mlp", "model_args": {"hidden": list(hidden)},
            "epochs": epochs, "batch_size": int(p["batch_size"]), "optimizer": "sgd",
            "optimizer_args": {"momentum": 0.0}, "lr": float(p["lr"]), "weight_decay": 0.0,
            "schedule": "constant", "augment": "none", "report_epoch": "last",
            "checkpoint": False, "seed": int(seed)}


def method_for(name: str, p: dict[str, Any]):

    family = TOY_METHODS[name]
    params = {"spl": p["spl"], "spl_inv": p["spl"],
              "lgl": {"reinit_untrained": bool(p["reinit_untrained"]), **p["lgl"]}}.get(name, {})
    cls = METHODS[family]
    return cls, cls.validate_params(dict(params), f"lgl_toy.{name}")


def iterations_of(history: list[dict[str, Any]], batch_size: int) -> np.ndarray:
    """Cumulative SGD iterations at the end of each epoch."""
    return np.cumsum([math.ceil(r["n_active"] / batch_size) for r in history])


def iterations_to(loss: np.ndarray, its: np.ndarray, target: float) -> float:
    """First iteration count at which the loss is <= target (inf if never)."""
    hit = np.nonzero(loss <= target)[0]
    return float(its[hit[0]]) if len(hit) else math.inf


def sign_test(scores: list[float]) -> dict[str, Any]:
    """Sign test of paired 'faster' scores (1 win, 0 loss, 0.5 tie; ties dropped): the share of
    wins among decided pairs with its exact Clopper-Pearson 95% interval (stats.proportion) and
    the one-sided exact binomial p-value against 0.5. A claim "a is faster than b" holds if the
    interval's lower end is above 0.5 (chance)."""
    wins, losses = sum(x == 1.0 for x in scores), sum(x == 0.0 for x in scores)
    n = wins + losses
    share, lo, hi = stats.proportion(wins, n)
    return {"value": share if n else None, "lo": lo, "hi": hi, "wins": wins, "losses": losses,
            "ties": len(scores) - n, "n": n, "p_value": stats.binom_test(wins, n, 0.5),
            "test": "sign test, exact Clopper-Pearson 95% interval"}


def toy_job(p: dict[str, Any], setting: dict[str, Any], seed: int, threads: int = 1,
            snapshot: bool = False) -> dict[str, Any]:
    """Every method of one (setting, seed); with `snapshot`, also Fig. 2 (h)'s per-sample losses."""
    torch.set_num_threads(threads)
    bs = int(p["batch_size"])
    ds = toy_dataset(setting["layout"], int(p["n_per_class"]), int(p["data_seed"]), float(p["test_fraction"]),
                     p["centres"][setting["layout"]])
    data = DeviceData(ds, "cpu")
    epochs = math.ceil(int(p["iterations"]) / math.ceil(len(ds.train_idx) / bs))
    rows, records = [], []
    for name in p["methods"]:
        cls, mp = method_for(name, p)
        tr = Trainer(toy_config(setting["hidden"], epochs, seed, p), data, cls, mp)
        rec = tr.fit()
        hist = tr.history
        for r, it in zip(hist, iterations_of(hist, bs)):
            rows.append({"setting": setting["name"], "layout": setting["layout"],
                         "hidden_layers": len(setting["hidden"]), "method": name, "seed": seed,
                         "epoch": r["epoch"], "phase": r["phase"], "iteration": int(it),
                         "n_active": r["n_active"], "batch_size": bs, "loss": r["val_loss"],
                         "test_loss": r["test_loss"], "test_acc": r["test_acc"]})
        records.append({"setting": setting["name"], "method": name, "seed": seed,
                        "epochs": rec["epochs_run"], "wall_time_s": rec["wall_time_s"],
                        "final_loss": hist[-1]["val_loss"], "test_acc": hist[-1]["test_acc"]})
    points = []
    if snapshot:   # Fig. 2 (h): per-sample loss of the baseline part-way through training
        cls, mp = method_for("baseline", p)
        snap = max(1, int(round(float(p["loss_snapshot"]) * epochs)))
        tr = Trainer(toy_config(setting["hidden"], snap, seed, p), data, cls, mp)
        tr.fit()
        losses = per_sample_loss(tr, data.train_idx).cpu().numpy()
        points = [{"setting": setting["name"], "layout": setting["layout"], "x0": float(xy[0]),
                   "x1": float(xy[1]), "label": int(lab), "loss_snapshot": float(l)}
                  for xy, lab, l in zip(ds.x_pool, ds.y_pool, losses)]
    return {"rows": rows, "records": records, "points": points}


def toy_job_args(args: tuple) -> dict[str, Any]:
    """`toy_job` on one tuple of arguments (the process pool's job)."""
    return toy_job(*args)


def run_toy(p: dict[str, Any], out_dir: str | Path, threads: int = 1, workers: int = 1) -> dict[str, Any]:
    """Train every (setting, method, seed), `workers` processes side by side (results do not
    depend on it: every run seeds itself); write curves.csv, points.csv and toy.json."""
    jobs = [(p, s, seed, threads, seed == p["seeds"][0]) for s in p["settings"] for seed in p["seeds"]]
    results = run_jobs(toy_job_args, jobs, workers=workers, threads=threads, desc="lgl_toy",
                       unit="seed")
    rows = [r for res in results for r in res["rows"]]
    records = [r for res in results for r in res["records"]]
    points = [r for res in results for r in res["points"]]
    curves = pd.DataFrame(rows)
    summary = toy_summary(curves, p)
    summary["runs"] = records
    summary["settings"] = p["settings"]
    summary["protocol"] = {k: p[k] for k in ("lr", "batch_size", "iterations", "seeds", "spl", "lgl",
                                             "reinit_untrained", "n_per_class", "test_fraction",
                                             "data_seed", "centres")}
    out = Path(out_dir)
    atomic_write_text(out / "curves.csv", curves.to_csv(index=False))
    atomic_write_text(out / "points.csv", pd.DataFrame(points).to_csv(index=False))
    write_json(out / "toy.json", summary)
    return summary


def pairwise_faster(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """1 if run a reaches the common target in fewer iterations than run b, 0 if slower, 0.5 if
    tied. Each run is (iterations, full-training-set loss); the common target is the higher of
    the two final losses, a level both runs reach."""
    target = max(float(a[1][-1]), float(b[1][-1]))
    ia, ib = iterations_to(a[1], a[0], target), iterations_to(b[1], b[0], target)
    return 1.0 if ia < ib else 0.5 if ia == ib else 0.0


def toy_summary(curves, p: dict[str, Any]) -> dict[str, Any]:
    """Claim quantities from the toy curves (see `pairwise_faster` for "faster").

    spl_inv_faster_than_spl (claim L5): over the separable settings (Fig. 2 a, b), a sign test
    (`sign_test`) of the (setting, seed) pairs in which SPL_INV reaches the common loss target in
    fewer SGD iterations than SPL. LGL is counted on its last step (all three classes),
    iterations from that step's start (Fig. 2 d-f)."""
    bs = int(p["batch_size"])
    comparisons = {"spl_inv_faster_than_spl": ("spl_inv", "spl"),
                   "spl_inv_faster_than_baseline": ("spl_inv", "baseline"),
                   "spl_faster_than_baseline": ("spl", "baseline"),
                   "lgl_faster_than_baseline": ("lgl", "baseline")}
    out: dict[str, Any] = {"per_setting": {}}
    scores: dict[str, dict[str, list[float]]] = {k: {} for k in comparisons}
    for setting, g in curves.groupby("setting", sort=False):
        layout = g["layout"].iloc[0]
        per: dict[str, Any] = {"layout": layout}
        for seed, gs in g.groupby("seed"):
            runs = {}
            for m, gm in gs.groupby("method"):
                gm = gm.sort_values("epoch")
                if m == "lgl":
                    gm = gm[gm["phase"] == gm["phase"].max()]
                    its = gm["iteration"].to_numpy() - gm["iteration"].iloc[0] + math.ceil(
                        gm["n_active"].iloc[0] / bs)
                else:
                    its = gm["iteration"].to_numpy()
                runs[m] = (its, gm["loss"].to_numpy())
            for key, (a, b) in comparisons.items():
                if a in runs and b in runs:
                    scores[key].setdefault(setting, []).append(pairwise_faster(runs[a], runs[b]))
        for key in comparisons:
            if setting in scores[key]:
                per[key] = float(np.mean(scores[key][setting]))
        per["final_loss"] = {m: float(gm.sort_values("epoch").groupby("seed")["loss"].last().mean())
                             for m, gm in g.groupby("method")}
        out["per_setting"][setting] = per
    layouts = {s["name"]: s["layout"] for s in p["settings"]}
    for key in comparisons:
        sep = [v for st, vals in scores[key].items() if layouts.get(st) == "separable" for v in vals]
        allv = [v for vals in scores[key].values() for v in vals]
        out[key] = sign_test(sep if key.startswith("spl") else allv)
    out["definitions"] = {
        "faster": "run a reaches the common target (the higher of the two runs' final "
                  "full-training-set losses) in fewer SGD iterations than run b; each key is a "
                  "sign test over the pairs (ties dropped): share of wins, exact 95% interval",
        "spl_inv_faster_than_spl": "(separable setting, seed) pairs: SPL_INV faster than SPL "
                                   "(claim L5, Fig. 2 a/b)",
        "spl_inv_faster_than_baseline": "same, SPL_INV vs baseline, separable settings",
        "spl_faster_than_baseline": "same, SPL vs baseline, separable settings",
        "lgl_faster_than_baseline": "LGL's last step (all classes, from its start) vs the baseline "
                                    "from scratch, all settings (Fig. 2 d-f)",
    }
    return out
