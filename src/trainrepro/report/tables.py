"""Tables for people: every table is written as Markdown, CSV and LaTeX side by side, and
paper tables put the paper's value, ours (mean ± std, 95% CI, n seeds), the difference and
a verdict on one row."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import atomic_write_text
from ..stats import NOT_COMPARABLE, NOT_RUN, reproduced_summary
from .display import readable_frame



def write_table(df: pd.DataFrame, stem: str | Path, caption: str = "") -> None:
    """Write <stem>.md, <stem>.csv and <stem>.tex (atomic, deterministic float formatting)."""
    stem = Path(stem)
    df = readable_frame(df)
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, float_format="%.6g"))
    shown = df.copy()
    for c in shown.columns:
        if shown[c].dtype.kind == "f":  # noise rates and counts read as 0.4 / 20, measurements
            whole = bool(((shown[c].dropna() % 1) == 0).all())  # with 4 decimals
            spec = "g" if "noise" in str(c) or whole else ".4f"
            shown[c] = shown[c].map(lambda x, spec=spec: "" if pd.isna(x) else format(x, spec))
    md = (f"{caption}\n\n" if caption else "") + shown.to_markdown(index=False, disable_numparse=True) + "\n"
    atomic_write_text(stem.with_suffix(".md"), md)
    tex = shown.to_latex(index=False, caption=caption or None, escape=True)
    atomic_write_text(stem.with_suffix(".tex"), tex)


def fmt_mean_std(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"


def fmt_ci(lo: float, hi: float) -> str:
    return "—" if pd.isna(lo) else f"[{lo:.4f}, {hi:.4f}]"


def fmt_diff_ci(lo: float, hi: float) -> str:
    """The interval of a difference: signed bounds, so it never reads as an accuracy interval."""
    return "—" if pd.isna(lo) else f"[{lo:+.4f}, {hi:+.4f}]"


def paper_comparison(table: dict[str, Any], cells: pd.DataFrame, tol: float = 0.02) -> pd.DataFrame:
    """Paper value beside ours for each entry of a paper table (papers/<paper>.yaml).

    Our cell is matched on method and noise; the value is `comparable` only when our dataset
    and model are the paper's own (paper scale). Otherwise the verdict is `not comparable`
    and the row still shows our number at our scale, so a reader sees both. A comparable cell
    is `reproduced` when the 90% t-interval of our mean lies within the paper's value +- tol
    (an equivalence test, TOST at 5%), `underpowered` when that interval is wider than the band.
    """
    metric = table.get("metric", "test_accuracy")
    rows = []
    for e in table.get("entries", []):
        if "value" not in e or e.get("method") is None:
            continue
        paper_acc = e["value"] if metric == "test_accuracy" else 1.0 - e["value"]
        noise = e.get("noise") or 0.0
        m = cells[(cells["method"] == e["method"]) & np.isclose(cells["noise"].astype(float), float(noise))] \
            if not cells.empty else cells
        same = m[(m["dataset"] == e.get("dataset")) & (m["model"] == e.get("model"))] if not m.empty else m
        base = {"paper dataset": e.get("dataset"), "paper model": e.get("model"), "noise": noise,
                "method": e["method"], "reference": e.get("reference", "paper"),
                "paper acc": paper_acc,
                "source": f"{e['source'].get('table', '')}, row {e['source'].get('row', '')}, "
                          f"column {e['source'].get('column', '')}"}
        if m.empty:
            rows.append({**base, "our dataset": "", "our model": "", "ours (mean ± std)": "—",
                         "95% CI": "—", "n": 0, "diff": np.nan, "verdict": NOT_RUN})
            continue
        for _, c in (same if not same.empty else m).iterrows():
            comparable = not same.empty
            diff = c["mean"] - paper_acc
            if not comparable:
                verdict = NOT_COMPARABLE
            else:  # equivalence test at `tol` (stats.reproduced): reproduced / not / underpowered
                verdict = reproduced_summary(c["mean"], c["std"], int(c["n"]), paper_acc, tol)[0]
            rows.append({**base, "our dataset": c["dataset"], "our model": c["model"],
                         "ours (mean ± std)": fmt_mean_std(c["mean"], c["std"]),
                         "95% CI": fmt_ci(c["ci_low"], c["ci_high"]), "n": int(c["n"]),
                         "diff": diff, "verdict": verdict})
    cols = ["paper dataset", "paper model", "noise", "method", "reference", "paper acc", "our dataset",
            "our model", "ours (mean ± std)", "95% CI", "n", "diff", "verdict", "source"]
    return pd.DataFrame(rows, columns=cols)


def cells_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Our per-cell summary in reading form."""
    out = pd.DataFrame({
        "dataset": cells["dataset"], "model": cells["model"], "noise": cells["noise"],
        "method": cells["method"],
        "test acc (mean ± std)": [fmt_mean_std(m, s) for m, s in zip(cells["mean"], cells["std"])],
        "95% CI": [fmt_ci(lo, hi) for lo, hi in zip(cells["ci_low"], cells["ci_high"])],
        "n": cells["n"], "seeds": cells["seeds"], "diverged": cells["n_diverged"],
        "failed": cells["n_failed"], "epochs": cells["epochs"], "time/run (s)": cells["wall_time_s"],
    })
    return out
