"""Run records -> tables: load every run of a study, summarise cells over seeds (mean, std,
95% t-interval, trainrepro.stats), and collect per-epoch histories for curves."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import read_json
from .stats import mean_ci

CELL_KEYS = ["study", "dataset", "model", "noise", "method"]


def load_index(results_root: str | Path, study: str) -> dict[str, Any]:
    path = Path(results_root) / study / "index.json"
    if not path.exists():
        return {"study": study, "runs": []}
    return read_json(path)


def record_path(run_dir: str | Path, results_root: str | Path) -> Path:
    """A run's metrics.json. Index run_dirs are relative to the repository (results/<study>/...);
    for a results tree elsewhere (a reference tree, a copy) they resolve from its parent."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_absolute() and not path.exists():
        path = Path(results_root).parent / path
    return path


def read_record(path: Path) -> dict[str, Any]:
    """The run record at `path` (record_path), or {"status": "missing"} when there is none."""
    return read_json(path) if path.exists() else {"status": "missing"}


def load_runs(results_root: str | Path, study: str) -> pd.DataFrame:
    """One row per run of the study's current matrix (index.json), with its reported metrics."""
    index = load_index(results_root, study)
    rows = []
    for r in index["runs"]:
        path = record_path(r["run_dir"], results_root)
        rec = read_record(path)
        rep = rec.get("reported", {}) or {}
        rows.append({
            "study": study, "cell": r["cell"], "dataset": r["dataset"], "model": r["model"],
            "noise": float(r["noise"]), "method": r["method"], "seed": r["seed"],
            "status": rec.get("status"), "diverged_epoch": rec.get("diverged_epoch"),
            "test_acc": rep.get("test_acc"), "val_acc": rep.get("val_acc"),
            "test_loss": rep.get("test_loss"), "reported_epoch": rep.get("epoch"),
            "rule": rep.get("rule"), "epochs_run": rec.get("epochs_run"),
            "wall_time_s": rec.get("wall_time_s"), "device": rec.get("device"),
            "realised_noise": (rec.get("noise") or {}).get("realised_wrong_rate"),
            "run_dir": str(path.parent),  # where the record was read (also for a reference tree)
        })
    cols = CELL_KEYS + ["cell", "seed", "status", "diverged_epoch", "test_acc", "val_acc", "test_loss",
                        "reported_epoch", "rule", "epochs_run", "wall_time_s", "device",
                        "realised_noise", "run_dir"]
    return pd.DataFrame(rows, columns=cols)


def summarise(runs: pd.DataFrame, metric: str = "test_acc") -> pd.DataFrame:
    """Per cell: n ok runs, diverged/failed counts, mean, std, 95% CI of `metric`, seeds."""
    out = []
    if runs.empty:
        return pd.DataFrame(columns=CELL_KEYS + ["cell", "n", "n_diverged", "n_failed", "mean", "std",
                                                  "ci_low", "ci_high", "seeds", "epochs", "wall_time_s"])
    for keys, g in runs.groupby(CELL_KEYS + ["cell"], sort=False):
        ok = g[g["status"] == "ok"]
        m, sd, lo, hi = mean_ci(ok[metric].to_numpy(dtype=float),
                                bounds=(0.0, 1.0) if metric.endswith("_acc") else None)
        row = dict(zip(CELL_KEYS + ["cell"], keys))
        row.update({"n": len(ok), "n_diverged": int((g["status"] == "diverged").sum()),
                    "n_failed": int(g["status"].isin(["failed", "missing"]).sum()),
                    "mean": m, "std": sd, "ci_low": lo, "ci_high": hi,
                    "seeds": ",".join(str(s) for s in sorted(ok["seed"])),
                    "epochs": float(ok["epochs_run"].mean()) if len(ok) else np.nan,
                    "wall_time_s": float(ok["wall_time_s"].mean()) if len(ok) else np.nan})
        out.append(row)
    return pd.DataFrame(out)


def load_histories(runs: pd.DataFrame) -> pd.DataFrame:
    """Concatenate history.csv of every ok/diverged run, tagged with its cell keys and seed."""
    frames = []
    for _, r in runs.iterrows():
        path = Path(r["run_dir"]) / "history.csv"
        if path.exists():
            h = pd.read_csv(path)
            for k in CELL_KEYS + ["cell", "seed"]:
                h[k] = r[k]
            frames.append(h)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
