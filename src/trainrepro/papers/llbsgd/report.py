"""LLb-SGD report: Tables 2-4 in the paper's layout and Figs. 5-8 redrawn, from the study's
analysis files (results/llbsgd/{tables,curves,convergence,robustness}.json). LLb-SGD here is a
labelled *reconstruction* (its equations are lost); every caption says so. The paper's table
cells are not recoverable (paper.yaml): each table says so in its paper column."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ...io import read_json
from ...report.tables import fmt_ci, fmt_mean_std, write_table

RECON = "LLb-SGD = our labelled reconstruction (the paper's update equations are lost)"
PAPER_VALUE = "not recoverable (table body lost in every available copy)"
NAMES = {"sgd": "SGD (naive)", "nag": "NAG", "adagrad": "Adagrad", "adam": "Adam", "adadelta": "Adadelta",
         "rmsprop": "RMSProp", "pathsgd": "Path-SGD", "esgd": "ESGD", "llbsgd": "LLb-SGD (reconstruction)"}


# `dvc exp show` columns (reports/metrics.json): the Table 2 cell of each optimizer, i.e. the
# learning rate chosen on validation (analysis.select_lr), not the first cell of its lr grid.
HEADLINE = {"sgd": "opt_sgd", "llbsgd_reconstruction": "opt_llbsgd", "adam": "opt_adam"}


def headline(results_root: str | Path = "results") -> dict[str, Any]:
    """Mean test accuracy (and the chosen lr, `<label>_lr`) of each HEADLINE optimizer's
    validation-selected Table 2 cell; None where the study did not run it."""
    rows = {r["method"]: r for r in _load(results_root, "tables").get("table2", [])}
    out: dict[str, Any] = {}
    for label, method in HEADLINE.items():
        r = rows.get(method)
        acc = r.get("test_acc") if r else None
        out[label] = round(float(acc["mean"]), 4) if acc else None
        out[f"{label}_lr"] = r["lr"] if r else None
    return out


def _load(results_root: str | Path, name: str) -> dict[str, Any]:
    path = Path(results_root) / "llbsgd" / f"{name}.json"
    return read_json(path) if path.exists() else {}


def fmt_range(lo: float, hi: float) -> str:
    """A 95% interval of a loss or a ratio (not bounded by 1): 'lo – hi'."""
    return "—" if pd.isna(lo) else f"{lo:.4f} – {hi:.4f}"


def _cells(row: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, label in (("train_loss", "final train loss"), ("test_loss", "test loss"),
                       ("test_acc", "test acc")):
        st = row.get(key)
        out[label] = fmt_mean_std(st["mean"], st["std"]) if st else "—"
        interval = fmt_ci if key.endswith("acc") else fmt_range  # [a, b] is kept for accuracies
        out[f"{label} 95% CI"] = interval(st["ci_low"], st["ci_high"]) if st else "—"
    out["n"] = str(len(row.get("seeds", [])))
    return out


def optimizer_label(method: str, optimizer: str) -> str:
    """The optimizer's name, with the method instance when it is not the plain `opt_<optimizer>`
    (e.g. ESGD [opt_esgd_damped]: its optimizer_args differ from the registry defaults)."""
    name = NAMES.get(optimizer, optimizer)
    return name if method == f"opt_{optimizer}" else f"{name} [{method}]"


def table2(tables: dict[str, Any]) -> pd.DataFrame:
    rows = [{"optimizer": optimizer_label(r["method"], r["optimizer"]), "lr (chosen on val)": f"{r['lr']:g}",
             "grid": ", ".join(f"{x:g}" for x in r["grid"]), **_cells(r), "paper": PAPER_VALUE}
            for r in tables.get("table2", [])]
    return pd.DataFrame(rows)


def table3(tables: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"batch size": str(r["batch_size"]), **_cells(r), "paper": PAPER_VALUE}
                         for r in tables.get("table3", [])])


def table4(tables: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"initialisation": r["init"], **_cells(r), "paper": PAPER_VALUE}
                         for r in tables.get("table4", [])])


def fig7_table(tables: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"initial lr": f"{r['lr']:g}",
                          "iterations to convergence (per seed)": ", ".join("—" if i is None else str(i)
                                                                            for i in r["iterations"]),
                          "not converged": str(r["censored"]), **_cells(r),
                          "final rate / initial, per layer": ", ".join(
                              f"{k} {v:.3f}" for k, v in (r.get("layer_scale") or {}).items()) or "—"}
                         for r in tables.get("fig7", [])])


def convergence_table(conv: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for m, c in conv.get("optimizers", {}).items():
        sp = c.get("speedup_vs_sgd") or {}
        rows.append({"method": m, "lr": f"{c['lr']:g}",
                     "iterations to target (per seed)": ", ".join("—" if v is None else str(v)
                                                                  for v in c["iterations"].values()),
                     "SGD iterations / its iterations": fmt_mean_std(sp.get("ratio", float("nan")), float("nan")),
                     "95% CI": fmt_range(sp.get("ci_low", float("nan")), sp.get("ci_high", float("nan"))),
                     "censored": str(sp.get("censored", ""))})
    return pd.DataFrame(rows)


def per_setting(doc: dict[str, Any], table: Callable[[dict[str, Any]], pd.DataFrame]) -> pd.DataFrame:
    """`table(doc)`, or with several (dataset, model) settings (analysis.study_analysis
    `by_setting`) every setting's table stacked under a leading `setting` column."""
    if "by_setting" not in doc:
        return table(doc)
    parts = [table(d).assign(setting=k) for k, d in doc["by_setting"].items()]
    df = pd.concat(parts, ignore_index=True)
    return df[["setting", *[c for c in df.columns if c != "setting"]]]


def write_tables(results_root: str | Path = "results", tables_root: str | Path = "reports/tables") -> None:
    """llbsgd_table2/3/4, llbsgd_fig7 and llbsgd_convergence as .md/.csv/.tex."""
    tables, conv = _load(results_root, "tables"), _load(results_root, "convergence")
    if not tables:
        return
    t = Path(tables_root)
    write_table(per_setting(tables, table2), t / "llbsgd_table2_layout",
                f"LLb-SGD Table 2 (paper layout): final training loss, test loss (and accuracy) per optimizer, "
                f"each at its best lr on validation. {RECON}.")
    write_table(per_setting(tables, table3), t / "llbsgd_table3_layout", f"LLb-SGD Table 3: batch size. {RECON}.")
    write_table(per_setting(tables, table4), t / "llbsgd_table4_layout", f"LLb-SGD Table 4: initialisation. {RECON}.")
    write_table(per_setting(tables, fig7_table), t / "llbsgd_fig7", f"LLb-SGD Fig. 7 data: initial learning rate. {RECON}.")
    write_table(per_setting(conv, convergence_table), t / "llbsgd_convergence",
                f"Iterations to a smoothed training loss <= {conv.get('target_loss')} and the ratio to naive "
                f"SGD (paired by seed, 95% t-interval). {RECON}.")


def figures(results_root: str | Path, figures_root: str | Path, scale: str) -> dict[str, Path]:
    """Figs. 5-8 redrawn as PNGs (matplotlib imported here only: report stage)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .analysis import smooth

    curves = _load(results_root, "curves")
    tables = _load(results_root, "tables")
    conv = _load(results_root, "convergence")
    out_dir = Path(figures_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}

    def save(fig: Any, key: str, name: str) -> None:
        out[key] = out_dir / name
        fig.savefig(out[key], dpi=110, bbox_inches="tight")
        plt.close(fig)

    w = int(conv.get("smooth_iterations", 1))
    where = f"{scale}, {conv['setting']}" if conv.get("setting") else scale  # Figs. 5-7: the first setting
    if curves.get("fig5"):
        fig, ax = plt.subplots(figsize=(7, 4))
        for m, tr in curves["fig5"].items():
            ax.plot(smooth(tr, w), label=m)
        ax.set(xlabel="iteration", ylabel=f"training loss (trailing mean of {w})", yscale="log",
               title=f"Fig. 5 redrawn ({where}); {RECON}")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
        save(fig, "fig5", "llbsgd_fig5_train_loss.png")
    if curves.get("fig6"):
        f6 = curves["fig6"]
        fig, ax = plt.subplots(figsize=(7, 4))
        it = np.arange(len(f6["llbsgd_mean_rate"]))
        ax.plot(it, f6["llbsgd_mean_rate"], label="LLb-SGD mean layer rate (reconstruction)")
        ax.plot(it, f6["inverse_t"], label=f"1/t: a0/(1+kt), k={f6['k']}")
        ax.plot(it, f6["exponential"], label=f"exp: a0 exp(-kt), k={f6['k']}")
        ax.set(xlabel=f"iteration (t in the baselines counts {f6['t_unit']})", ylabel="learning rate",
               yscale="log", title=f"Fig. 6 redrawn ({where})")
        ax.legend(fontsize=7)
        save(fig, "fig6", "llbsgd_fig6_lr.png")
    if tables.get("fig7"):
        f7 = tables["fig7"]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        lrs = [r["lr"] for r in f7]
        axes[0].plot(lrs, [r["iterations_mean"] for r in f7], "o-")
        axes[0].set(xscale="log", xlabel="initial lr", ylabel="iterations to convergence")
        for key in ("train_loss", "test_loss"):
            axes[1].plot(lrs, [r[key]["mean"] if r.get(key) else np.nan for r in f7], "o-", label=key)
        axes[1].set(xscale="log", xlabel="initial lr", ylabel="final loss")
        axes[1].legend(fontsize=7)
        fig.suptitle(f"Fig. 7 redrawn ({where}); {RECON}", fontsize=8)
        save(fig, "fig7", "llbsgd_fig7_initial_lr.png")
    planes = curves.get("fig8") or {}
    if planes:
        keys = sorted(planes)
        cols = min(len(keys), 5)
        rows = (len(keys) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.8 * rows), squeeze=False)
        for ax, key in zip(axes.flat, keys):
            p = planes[key]
            loss = np.asarray(p["loss"])
            ax.contour(p["a"], p["b"], np.log(loss + 1e-8), levels=15, linewidths=0.6)
            path = np.asarray(p["path"])
            ax.plot(path[:, 0], path[:, 1], "r.-", ms=2, lw=0.8)
            ax.plot(path[-1, 0], path[-1, 1], "k*")
            ax.set_title(key, fontsize=7)
            ax.tick_params(labelsize=6)
        for ax in list(axes.flat)[len(keys):]:
            ax.axis("off")
        fig.suptitle(f"Fig. 8 redrawn ({scale}): trajectories on their two principal directions over the "
                     f"training-loss contours of that plane; {RECON}", fontsize=8)
        save(fig, "fig8", "llbsgd_fig8_trajectories.png")
    return out


def make_all(results_root: str | Path = "results", figures_root: str | Path = "reports/figures",
             scale: str = "quick") -> dict[str, Any]:
    """Every table (DataFrames) and figure (PNG paths) for the notebook."""
    tables, conv = _load(results_root, "tables"), _load(results_root, "convergence")
    return {"table2": per_setting(tables, table2), "table3": per_setting(tables, table3),
            "table4": per_setting(tables, table4), "fig7": per_setting(tables, fig7_table),
            "convergence": per_setting(conv, convergence_table), "convergence_raw": conv,
            "robustness_raw": _load(results_root, "robustness"),
            "figures": figures(results_root, figures_root, scale)}
