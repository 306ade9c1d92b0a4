"""LGL paper report: Tables 1-3 in the paper's layout (paper values beside ours), compute
accounting (Sec. 4.3), Fig. 3 (validation accuracy per epoch) and the toy Fig. 2 (a-i).

Our numbers are mean ± std over seeds with a 95% t-interval and n. Our datasets differ from
the paper's at the quick and CIFAR-10 JPEG scales, so absolute paper-vs-ours verdicts are only
given where the dataset and model are the paper's; every row also carries a *direction*
verdict: does the method's difference to the baseline have the paper's sign (Welch 95%
interval of the difference: entirely on the paper's side = "same direction", entirely on the
other = "opposite direction", straddling 0 = "inconclusive")?
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ...io import read_json
from ...stats import diff_interval, direction, reproduced_summary
from ...report.figures import plt, save_fig
from ...report.tables import fmt_ci, fmt_diff_ci, fmt_mean_std, write_table
from ...results import load_histories, load_runs, summarise

PAPER_YAML = Path(__file__).resolve().parent / "paper.yaml"
LABELS = {"baseline": "Baseline", "spl": "SPL", "spl_inv": "SPL_INV", "spld": "SPLD",
          "lgl_r2": "LGL(r, 2)", "lgl_r3": "LGL(r, 3)", "lgl_r4": "LGL(r, 4)", "lgl_r20": "LGL(r, 20)",
          "lgl_d3": "LGL(d, 3)", "lgl_s3": "LGL(s, 3)",
          "baseline_matched": "Baseline, sample-visits of LGL(r, 4) (ours)",
          "baseline_matched_r3": "Baseline, sample-visits of LGL(r, 3) (ours)"}
TABLE1 = ["baseline", "spl", "spl_inv", "spld", "lgl_r2", "lgl_r3", "lgl_r4", "lgl_r20",
          "baseline_matched", "baseline_matched_r3"]
TABLE3 = ["lgl_r3", "lgl_d3", "lgl_s3"]
PAPER_DATASETS = ["cifar10", "cifar100"]


def paper_tables(path: str | Path = PAPER_YAML) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in yaml.safe_load(Path(path).read_text()).get("tables", [])}


def paper_value(table: dict[str, Any], dataset: str, method: str) -> float:
    for e in table.get("entries", []):
        if e.get("dataset") == dataset and e.get("method") == method:
            return float(e["value"])
    return np.nan


def direction_verdict(ours: np.ndarray, base: np.ndarray, paper_diff: float) -> str:
    """Compare the sign of our (method - baseline) difference (Welch 95% t-interval) with the
    paper's (stats.direction)."""
    if len(ours) == 0 or len(base) == 0 or np.isnan(paper_diff):
        return "not run" if len(ours) == 0 else "—"
    if paper_diff == 0:
        return "—"
    d, lo, hi = diff_interval(ours, base)
    return direction(lo, hi, paper_diff)


def accuracy_table(runs: pd.DataFrame, methods: list[str], table: dict[str, Any],
                   compute: dict[str, Any] | None = None, tol: float = 0.02) -> pd.DataFrame:
    """One row per (our dataset/model, method): paper CIFAR-10/100 values, ours, compute, verdicts."""
    cells = summarise(runs)
    ok = runs[runs["status"] == "ok"]
    times: dict[tuple, list[float]] = {}
    cpu: dict[tuple, list[float]] = {}
    for _, r in ok.iterrows():   # batch-loop time (engine's train_time_s / train_cpu_s)
        h = Path(r["run_dir"]) / "history.csv"
        if h.exists():
            hh = pd.read_csv(h)
            key = (r["dataset"], r["model"], r["method"])
            if "train_time_s" in hh:
                times.setdefault(key, []).append(float(hh["train_time_s"].sum()))
            if "train_cpu_s" in hh:
                cpu.setdefault(key, []).append(float(hh["train_cpu_s"].sum()))
    rows = []
    for (ds, model), cg in cells.groupby(["dataset", "model"], sort=False):
        base = ok[(ok["dataset"] == ds) & (ok["model"] == model) & (ok["method"] == "baseline")]
        for m in methods:
            c = cg[cg["method"] == m]
            paper = {d: paper_value(table, d, m) for d in PAPER_DATASETS}
            if c.empty and all(np.isnan(v) for v in paper.values()):
                continue
            row: dict[str, Any] = {"method": LABELS.get(m, m),
                                   "paper CIFAR-10": paper["cifar10"], "paper CIFAR-100": paper["cifar100"],
                                   "our data": f"{ds} / {model}"}
            if c.empty:
                rows.append({**row, "ours (mean ± std)": "—", "95% CI": "—", "n": 0, "seeds": "",
                             "vs our baseline": np.nan, "epochs": np.nan, "train time (s)": np.nan,
                             "train CPU (s)": np.nan,
                             "wall time (s)": np.nan, "vs paper": "not run", "direction": "not run"})
                continue
            c = c.iloc[0]
            vals = ok[(ok["dataset"] == ds) & (ok["model"] == model) & (ok["method"] == m)]["test_acc"]
            pv = paper.get(ds, np.nan)
            if ds in PAPER_DATASETS and model == "vgg16" and not np.isnan(pv):
                vs_paper = reproduced_summary(c["mean"], c["std"], int(c["n"]), pv, tol)[0]
            else:
                vs_paper = "not comparable (other data)"
            pbase = {d: paper_value(table, d, "baseline") for d in PAPER_DATASETS}
            pdiffs = [paper[d] - pbase[d] for d in PAPER_DATASETS if not np.isnan(paper[d] - pbase[d])]
            pdiff = float(np.mean(np.sign(pdiffs))) if pdiffs else np.nan
            direction = ("reference" if m == "baseline" else
                         direction_verdict(vals.to_numpy(float), base["test_acc"].to_numpy(float), pdiff))
            tt, tc = times.get((ds, model, m)), cpu.get((ds, model, m))
            rows.append({**row, "ours (mean ± std)": fmt_mean_std(c["mean"], c["std"]),
                         "95% CI": fmt_ci(c["ci_low"], c["ci_high"]), "n": int(c["n"]), "seeds": c["seeds"],
                         "vs our baseline": c["mean"] - float(base["test_acc"].mean()) if len(base) else np.nan,
                         "epochs": c["epochs"], "train time (s)": float(np.mean(tt)) if tt else np.nan,
                         "train CPU (s)": float(np.mean(tc)) if tc else np.nan,
                         "wall time (s)": c["wall_time_s"], "vs paper": vs_paper, "direction": direction})
    return pd.DataFrame(rows)


def table1(results_root: str | Path = "results", compute: dict[str, Any] | None = None) -> pd.DataFrame:
    """Table 1: every method, CIFAR-10 and CIFAR-100 paper columns, ours + compute columns."""
    return accuracy_table(load_runs(results_root, "lgl"), TABLE1, paper_tables()["table1"], compute)


def table3(results_root: str | Path = "results", compute: dict[str, Any] | None = None) -> pd.DataFrame:
    """Table 3: selection strategies r / d / s at m = 3 (same initial classes per seed)."""
    return accuracy_table(load_runs(results_root, "lgl"), TABLE3, paper_tables()["table3"], compute)


def table2(entropy: dict[str, Any] | None) -> pd.DataFrame:
    """Table 2: trained classes | untrained classes with the lowest H_w(T|X_i) | the highest.
    The paper's two CIFAR-100 rows first, then ours (first LGL selection of some runs)."""
    rows = [{"source": "paper (CIFAR-100, VGG-16)", "trained clusters": ", ".join(e["trained"]),
             "lowest H_w(T|X_i)": ", ".join(e["lowest"]), "highest H_w(T|X_i)": ", ".join(e["highest"])}
            for e in paper_tables()["table2"]["entries"]]
    for e in (entropy or {}).get("table2", []):
        rows.append({"source": f"ours ({e['dataset']}, {e['model']}, {e['source_run']})",
                     "trained clusters": ", ".join(e["trained"]),
                     "lowest H_w(T|X_i)": ", ".join(e["lowest"]),
                     "highest H_w(T|X_i)": ", ".join(e["highest"])})
    return pd.DataFrame(rows)


def probes_table(entropy: dict[str, Any] | None) -> pd.DataFrame:
    """Claim L6 evidence: per designated look-alike pair, the mean normalised entropy rank of the
    look-alike among the untrained classes (0 = lowest H, chance 0.5) over distinct selections."""
    p = pd.DataFrame((entropy or {}).get("probes", []))
    if p.empty:
        return p
    return (p.groupby(["dataset", "trained_class", "similar_class"])["rank"]
            .agg(["mean", "count"]).reset_index()
            .rename(columns={"mean": "mean rank (0 lowest H, chance 0.5)", "count": "probes"}))


def interval_row(name: str, d: dict[str, Any] | None, thr: float, op: str, what: str) -> dict[str, Any]:
    """One line of a claim scalar with its interval and the threshold it is judged against."""
    d = d or {}
    return {"quantity": name, "value": d.get("value"), "95% interval": fmt_ci(d.get("lo"), d.get("hi")),
            "needs": f"{op} {thr:g}", "evidence": what}


def claim_scalars(entropy: dict[str, Any] | None, compute: dict[str, Any] | None,
                  toy: dict[str, Any] | None) -> pd.DataFrame:
    """The scalars claims L5-L7 are decided on, each with its interval or test."""
    r = (entropy or {}).get("similar_class_rank") or {}
    rows = [interval_row("similar_class_rank (L6)", r, 0.5, "<",
                         f"{r.get('n_selections', 0)} distinct selections, {r.get('n_probes', 0)} probes; "
                         "95% t-interval over selections")]
    e = (compute or {}).get("time_ratio_vs_formula_error")
    rows.append(interval_row("time_ratio_vs_formula_error (L7)", e if isinstance(e, dict) else None, 0.25, "<=",
                             (e or {}).get("interval", "") if isinstance(e, dict) else ""))
    for key in ("spl_inv_faster_than_spl", "spl_inv_faster_than_baseline", "spl_faster_than_baseline",
                "lgl_faster_than_baseline"):
        t = (toy or {}).get(key)
        if isinstance(t, dict):
            rows.append(interval_row(key + (" (L5)" if key == "spl_inv_faster_than_spl" else ""), t, 0.5, ">",
                                     f"sign test: {t['wins']} wins, {t['losses']} losses, {t['ties']} ties; "
                                     f"p = {t['p_value']:.3g}; exact 95% interval"))
    return pd.DataFrame(rows)


def compute_table(compute: dict[str, Any] | None) -> pd.DataFrame:
    """Measured LGL / baseline time against Sec. 4.3's 1/2 t (m + 1), per m, with the interval of
    the relative deviation (claim L7)."""
    rows = []
    for p in (compute or {}).get("per_m", []):
        rows.append({"data": f"{p['dataset']} / {p['model']}", "m": p["m"], "runs": p["n_runs"],
                     "methods": ", ".join(LABELS.get(x, x) for x in p["methods"]),
                     "formula (m+1)/2": p["formula"], "sample-epoch ratio": p["sample_epoch_ratio"],
                     "train-time ratio": p["time_ratio"],
                     "rel. deviation": p.get("rel_deviation", np.nan),
                     f"interval ({p.get('interval_level', 0.95):.1%})": fmt_diff_ci(p.get("rel_deviation_lo"),
                                                                            p.get("rel_deviation_hi")),
                     "wall-time ratio": p["wall_ratio"]})
    return pd.DataFrame(rows)


def matched_table(compute: dict[str, Any] | None) -> pd.DataFrame:
    """Each compute-matched baseline run beside what it matches: its sample visits, the LGL(r, m)
    run's, epochs, and its training / wall time against the baseline's."""
    rows = []
    for r in (compute or {}).get("runs", []):
        if r["family"] != "baseline_matched":
            continue
        rows.append({"data": f"{r['dataset']} / {r['model']}", "method": LABELS.get(r["method"], r["method"]),
                     "seed": r["seed"], "m": r["m"], "sample visits": r["sample_visits"],
                     "LGL(r, m) sample visits": r["matched_lgl_sample_visits"], "epochs": r["epochs"],
                     "baseline epochs": r["baseline_epochs"], "train-time ratio": r["time_ratio"],
                     "wall time (s)": r["wall_time_s"], "wall-time ratio": r["wall_ratio"]})
    return pd.DataFrame(rows)


# --- figures ---------------------------------------------------------------------------------
FIG3_METHODS = ["baseline", "lgl_r4", "spl", "spl_inv", "spld"]


def figure3(results_root: str | Path, path: str | Path, scale: str) -> Path | None:
    """Fig. 3: validation accuracy against epochs per method (mean over seeds, min-max band).
    Left: as in the paper, LGL(r, 4) while trained on all classes (its last step, epochs
    counted from that step's start). Right: LGL(r, 4) over all its epochs beside the
    compute-matched baseline (ours)."""
    runs = load_runs(results_root, "lgl")
    hist = load_histories(runs[runs["status"] == "ok"])
    if hist.empty:
        return None
    groups = list(hist.groupby(["dataset", "model"], sort=True))
    fig, grid = plt.subplots(len(groups), 2, figsize=(10, 3.8 * len(groups)), squeeze=False)
    for axes, ((ds, model), hd) in zip(grid, groups):
        # The paper plots LGL(r, 4); a profile without it (cifar10_jpeg) shows LGL(r, 3).
        lgl_m, matched = (("lgl_r4", "baseline_matched") if (hd["method"] == "lgl_r4").any()
                          else ("lgl_r3", "baseline_matched_r3"))
        for m in [x.replace("lgl_r4", lgl_m) for x in FIG3_METHODS] + [matched]:
            g = hd[hd["method"] == m]
            if g.empty:
                continue
            seeds = sorted(g["seed"].unique())
            for ax, whole in ((axes[0], False), (axes[1], True)):
                if not whole and m == matched:
                    continue
                if whole and m not in (lgl_m, matched, "baseline"):
                    continue
                gg = g
                if m.startswith("lgl") and not whole:
                    last = gg.groupby("seed")["phase"].transform("max")
                    gg = gg[gg["phase"] == last].copy()
                    gg["epoch"] = gg["epoch"] - gg.groupby("seed")["epoch"].transform("min")
                agg = gg.groupby("epoch")["val_acc"].agg(["mean", "min", "max"])
                line, = ax.plot(agg.index, agg["mean"], label=f"{LABELS.get(m, m)} (seeds {','.join(map(str, seeds))})")
                ax.fill_between(agg.index, agg["min"], agg["max"], alpha=0.15, color=line.get_color())
        axes[0].set_title(f"Fig. 3 analogue: {ds} / {model}, trained on all classes", fontsize=9)
        axes[1].set_title(f"{ds} / {model}: {LABELS[lgl_m]} all steps vs compute-matched baseline",
                          fontsize=9)
    for ax in grid.flat:
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        if ax.lines:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"scale: {scale}; line = mean over the seeds in its legend entry, band = min–max over "
                 f"those seeds", fontsize=8)
    fig.tight_layout()
    out = save_fig(fig, path)
    plt.close(fig)
    return out


def _band(ax, g: pd.DataFrame, label: str, grid: np.ndarray) -> None:
    ys = []
    for _, gs in g.groupby("seed"):
        gs = gs.sort_values("iteration")
        x = gs["iteration"].to_numpy(float)
        ys.append(np.where(grid <= x[-1], np.interp(grid, x, gs["loss"].to_numpy(float)), np.nan))
    y = np.array(ys)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, lo, hi = np.nanmean(y, 0), np.nanmin(y, 0), np.nanmax(y, 0)
    line, = ax.plot(grid, mean, label=label)
    ax.fill_between(grid, lo, hi, alpha=0.15, color=line.get_color())


def _toy_scale(scale: str | None) -> str:
    s = f"scale: {scale}" if scale else "scale: not given"
    return f"{s} (the toy study is the same at every scale)"


def toy_loss_figure(toy_root: str | Path, path: str | Path, scale: str | None = None) -> Path | None:
    """Fig. 2 (a-f): full-training-set loss against SGD iterations, mean and min-max over seeds.
    Top (a, b, c): Baseline / SPL / SPL_INV. Bottom (d, e, f): Baseline / LGL's last step."""
    f = Path(toy_root) / "curves.csv"
    if not f.exists():
        return None
    cur = pd.read_csv(f)
    settings = list(dict.fromkeys(cur["setting"]))
    fig, axes = plt.subplots(2, len(settings), figsize=(4 * len(settings), 6.8), squeeze=False)
    grid = np.arange(1, int(cur["iteration"].max()) + 1)
    letters = "abcdef"
    for j, s in enumerate(settings):
        g = cur[cur["setting"] == s]
        desc = f"{g['layout'].iloc[0]}, {g['hidden_layers'].iloc[0]} hidden layer(s)"
        for m in ("baseline", "spl", "spl_inv"):
            if (g["method"] == m).any():
                _band(axes[0, j], g[g["method"] == m], LABELS[m], grid)
        for m in ("baseline", "lgl"):
            gm = g[g["method"] == m]
            if gm.empty:
                continue
            if m == "lgl":
                last = gm["phase"] == gm["phase"].max()
                gm = gm[last].copy()
                first = gm.groupby("seed")["iteration"].transform("min")
                gm["iteration"] = gm["iteration"] - first + np.ceil(gm["n_active"] / gm["batch_size"])
            _band(axes[1, j], gm, "LGL (last step, all classes)" if m == "lgl" else LABELS[m], grid)
        seeds = ",".join(map(str, sorted(g["seed"].unique())))
        for i in range(2):
            ax = axes[i, j]
            ax.set_title(f"({letters[i * len(settings) + j]}) {desc}; seeds {seeds}", fontsize=8)
            ax.set_xlabel("SGD iterations")
            ax.set_ylabel("cross-entropy loss on all training data")
            ax.legend(fontsize=7)
    fig.suptitle(f"LGL Fig. 2 (a–f) toy study — {_toy_scale(scale)}; line = mean over the seeds in "
                 f"each panel title, band = min–max over those seeds", fontsize=8)
    fig.tight_layout()
    out = save_fig(fig, path)
    plt.close(fig)
    return out


def toy_scatter_figure(toy_root: str | Path, path: str | Path, scale: str | None = None) -> Path | None:
    """Fig. 2 (g) separable data, (h) the same coloured by the baseline's per-sample loss
    part-way through training, (i) overlapping data."""
    f = Path(toy_root) / "points.csv"
    if not f.exists():
        return None
    pts = pd.read_csv(f)
    proto = (load_json(Path(toy_root) / "toy.json") or {}).get("protocol", {})
    data_seed = proto.get("data_seed")
    snap_seed = (proto.get("seeds") or [None])[0]   # the stage snapshots the first seed's baseline
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    sep = pts[pts["layout"] == "separable"].drop_duplicates(["x0", "x1"])
    ovl = pts[pts["layout"] == "overlapping"].drop_duplicates(["x0", "x1"])
    centres = proto.get("centres", {})
    for ax, d, title in ((axes[0], sep, "(g) separable clusters"), (axes[2], ovl, "(i) overlapping clusters")):
        layout = "separable" if title.startswith("(g)") else "overlapping"
        if centres.get(layout):
            title += "\ncentres " + ", ".join(f"({x:g}, {y:g})" for x, y in centres[layout])
        for lab, g in d.groupby("label"):
            ax.scatter(g["x0"], g["x1"], s=6, label=f"class {lab}")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    sc = axes[1].scatter(sep["x0"], sep["x1"], c=sep["loss_snapshot"], s=6, cmap="viridis")
    snap_setting = sep["setting"].iloc[0] if len(sep) else None
    hidden = None
    cf = Path(toy_root) / "curves.csv"
    if snap_setting is not None and cf.exists():
        cur = pd.read_csv(cf, usecols=["setting", "hidden_layers"])
        h = cur.loc[cur["setting"] == snap_setting, "hidden_layers"]
        hidden = int(h.iloc[0]) if len(h) else None
    fig.colorbar(sc, ax=axes[1], label="per-sample loss (baseline, 1/4 of budget)")
    axes[1].set_title("(h) training loss of each sample"
                      + (f"\nbaseline, {hidden} hidden layer(s), seed {snap_seed}" if hidden is not None
                         else f"\nbaseline, seed {snap_seed}"), fontsize=9)
    for ax in axes:
        ax.set_xlabel("x1 (input feature 1)")
        ax.set_ylabel("x2 (input feature 2)")
    fig.suptitle(f"LGL Fig. 2 (g–i) toy data — {_toy_scale(scale)}; data drawn with seed {data_seed}",
                 fontsize=8)
    fig.tight_layout()
    out = save_fig(fig, path)
    plt.close(fig)
    return out


def load_json(path: str | Path) -> dict[str, Any] | None:
    p = Path(path)
    return read_json(p) if p.exists() else None


def write_tables(results_root: str | Path = "results", tables_root: str | Path = "reports/tables") -> None:
    """Write lgl_table1/2/3 and lgl_compute as .md/.csv/.tex (for the aggregate stage)."""
    compute = load_json(Path(results_root) / "lgl" / "compute.json")
    entropy = load_json(Path(results_root) / "lgl" / "entropy.json")
    t = Path(tables_root)
    write_table(table1(results_root, compute), t / "lgl_table1_layout", "LGL Table 1 (paper layout)")
    write_table(table3(results_root, compute), t / "lgl_table3_layout", "LGL Table 3 (paper layout)")
    write_table(table2(entropy), t / "lgl_table2_layout", "LGL Table 2: classes by H_w(T|X_i)")
    write_table(compute_table(compute), t / "lgl_compute", "LGL training time vs 1/2 t (m + 1)")
    write_table(matched_table(compute), t / "lgl_matched", "Compute-matched baselines: sample visits")
    toy = load_json(Path(results_root) / "lgl_toy" / "toy.json")
    write_table(claim_scalars(entropy, compute, toy), t / "lgl_claim_scalars",
                "LGL claims L5-L7: the scalars and their intervals")


def make_all(results_root: str | Path = "results", tables_root: str | Path = "reports/tables",
             figures_root: str | Path = "reports/figures", scale: str = "quick") -> dict[str, Any]:
    """Build every LGL table (DataFrames) and figure (PNG paths); tables are not written here
    (the aggregate stage owns reports/tables); returns them for the notebook."""
    compute = load_json(Path(results_root) / "lgl" / "compute.json")
    entropy = load_json(Path(results_root) / "lgl" / "entropy.json")
    toy = load_json(Path(results_root) / "lgl_toy" / "toy.json")
    figs = Path(figures_root)
    return {
        "table1": table1(results_root, compute), "table3": table3(results_root, compute),
        "table2": table2(entropy), "probes": probes_table(entropy), "compute": compute_table(compute),
        "matched": matched_table(compute), "claim_scalars": claim_scalars(entropy, compute, toy),
        "compute_raw": compute, "entropy_raw": entropy, "toy_raw": toy,
        "fig3": figure3(results_root, figs / "lgl_fig3_val_acc.png", scale),
        "fig2_loss": toy_loss_figure(Path(results_root) / "lgl_toy", figs / "lgl_fig2_loss_curves.png",
                                     scale),
        "fig2_scatter": toy_scatter_figure(Path(results_root) / "lgl_toy", figs / "lgl_fig2_scatter.png",
                                           scale),
    }
