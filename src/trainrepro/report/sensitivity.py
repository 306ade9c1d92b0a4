"""Reading-sensitivity tables (issue 9 item 20): per paper, how much the headline result and the
verdict of the claims it feeds depend on each reading of each switch (sensitivity.py plans the
runs; this module reads them).

One row per (switch, reading): its value, the cell's mean and 95% t-interval over seeds, the
difference to the default reading with its 95% interval (Welch; paired t when both readings are
measured on the same runs, as MaskT's), and each named claim's verdict with the default's runs
and with this reading's runs put in the default cell's place. Claims decided by a scalar of a
study-wide analysis (a file) are not re-evaluated per reading; the row says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Params
from ..io import read_json
from ..results import load_runs
from ..sensitivity import SENSITIVITY_STUDY, Planned, enabled_papers, plan
from ..stats import NOT_RUN, diff_interval, mean_ci, paired_interval
from .claims import evaluate_claims
from .tables import fmt_ci, write_table

COLUMNS = ["switch", "kind", "reading", "value", "default", "cell", "n", "metric", "mean", "95% CI",
           "diff vs default", "diff 95% CI", "claims", "verdict (default)", "verdict (this reading)",
           "verdict changes", "status", "source"]
NOT_REEVALUATED = "not re-evaluated (scalar of a study-wide analysis)"


def _record_value(run_dir: str, path: str, root: Path) -> float | None:
    p = Path(run_dir) / "metrics.json"
    if not p.is_absolute() and not p.exists():
        p = root / p
    if not p.exists():
        return None
    val: Any = read_json(p)
    for k in path.split("."):
        if not isinstance(val, dict) or k not in val:
            return None
        val = val[k]
    return None if val is None else float(val)


def reading_values(p: Planned, runs: pd.DataFrame, root: Path) -> pd.DataFrame:
    """The ok runs of one reading (its cell in its study) with a column `value` (the metric)."""
    rows = runs[(runs["cell"] == p.cell) & (runs["status"] == "ok")].copy()
    r = p.reading
    if r.measured:
        path = f"{r.measured}.{p.value}"
    elif r.metric in rows.columns:
        rows["value"] = rows[r.metric].astype(float)
        return rows
    else:
        path = r.metric
    rows["value"] = [_record_value(d, path, root) for d in rows["run_dir"]]
    return rows[rows["value"].notna()]


def _claim_verdicts(claims: list[dict[str, Any]], paper: str, runs: pd.DataFrame, root: Path) -> dict[str, str]:
    cell_claims = [c for c in claims if all(r["type"] != "scalar" for r in (c.get("rules") or [c["rule"]]))]
    if not cell_claims or runs.empty:
        return {}
    v = evaluate_claims(cell_claims, {paper: runs}, root)
    return dict(zip(v["id"], v["verdict"]))


def _substituted(paper_runs: pd.DataFrame, default_cell: str, reading_rows: pd.DataFrame) -> pd.DataFrame:
    """The paper's runs with the default cell's runs replaced by a reading's (renamed to it)."""
    base = paper_runs[paper_runs["cell"] != default_cell]
    sub = reading_rows.drop(columns=["value"]).assign(cell=default_cell, study=paper_runs["study"].iloc[0])
    return pd.concat([base, sub], ignore_index=True)


def sensitivity_table(params: Params, paper: str, claims: list[dict[str, Any]],
                      results_root: str | Path = "results") -> pd.DataFrame:
    """The reading-sensitivity table of one paper (every reading of its paper.yaml `readings:`)."""
    root = Path(results_root).resolve().parent
    enabled = paper in enabled_papers(params)
    planned = plan(params, [paper])
    studies = {paper: load_runs(results_root, paper),
               SENSITIVITY_STUDY: load_runs(results_root, SENSITIVITY_STUDY)}
    paper_claims = {c["id"]: c for c in claims if c["paper"] == paper}
    defaults: dict[tuple[str, str], tuple[Planned, pd.DataFrame]] = {}
    for p in planned:
        if p.is_default:
            defaults[(p.reading.switch, p.reading.method)] = (p, reading_values(p, studies[paper], root))
    rows = []
    for p in planned:
        r = p.reading
        named = [paper_claims[c] for c in r.claims if c in paper_claims]
        cell_ids = [c["id"] for c in named if all(x["type"] != "scalar" for x in (c.get("rules") or [c["rule"]]))]
        row = {"switch": r.switch, "kind": r.kind, "reading": p.label, "value": str(p.value),
               "default": "yes" if p.is_default else "", "cell": p.cell or p.default_cell,
               "metric": r.measured or r.metric, "claims": ", ".join(r.claims), "source": r.source,
               "status": p.status}
        if not enabled and p.status == "run":
            row["status"] = f"not run in profile {params.profile_name!r} (run profile `sensitivity`)"
        study = studies.get(p.study, pd.DataFrame())
        vals = reading_values(p, study, root) if p.cell and not study.empty else pd.DataFrame()
        d = defaults.get((r.switch, r.method))
        if vals.empty or d is None:
            rows.append({**row, "n": 0, "mean": np.nan, "95% CI": "—", "diff vs default": np.nan,
                         "diff 95% CI": "—", "verdict (default)": "", "verdict (this reading)": NOT_RUN,
                         "verdict changes": ""})
            continue
        bounds = (0.0, 1.0) if (r.measured or r.metric).endswith("acc") else None
        m, _, lo, hi = mean_ci(vals["value"], bounds=bounds)
        dvals = d[1]
        if p.is_default:
            dd, dlo, dhi = 0.0, np.nan, np.nan
        elif r.measured:  # the same runs under two test-time readings: paired by seed
            both = vals.merge(dvals, on="seed", suffixes=("", "_default"))
            dd, dlo, dhi = paired_interval(both["value"], both["value_default"])
        else:
            dd, dlo, dhi = diff_interval(vals["value"], dvals["value"])
        base_v = _claim_verdicts(named, paper, studies[paper], root)
        if r.measured or p.is_default:
            new_v = base_v
        else:
            new_v = _claim_verdicts(named, paper, _substituted(studies[paper], p.default_cell, vals), root)
        fmt = [f"{c}: {base_v[c]}" if c in base_v else f"{c}: {NOT_REEVALUATED}" for c in r.claims]
        fmt_new = [f"{c}: {new_v[c]}" if (c in new_v and not r.measured) else f"{c}: {NOT_REEVALUATED}"
                   for c in r.claims]
        changed = [c for c in cell_ids if not r.measured and base_v.get(c) != new_v.get(c)]
        rows.append({**row, "n": len(vals), "mean": m, "95% CI": fmt_ci(lo, hi), "diff vs default": dd,
                     "diff 95% CI": "" if p.is_default else fmt_ci(dlo, dhi),
                     "verdict (default)": "; ".join(fmt), "verdict (this reading)": "; ".join(fmt_new),
                     "verdict changes": ", ".join(changed) if changed else ("no" if cell_ids and not r.measured else "")})
    return pd.DataFrame(rows, columns=COLUMNS)


def caption(params: Params, paper: str, table: pd.DataFrame) -> str:
    ran = table[(table["n"] > 0) & (table["default"] != "yes")]
    changed = ran[~ran["verdict changes"].isin(["", "no"])]
    big = ran.loc[ran["diff vs default"].abs().idxmax()] if len(ran) else None
    lines = [(f"Reading sensitivity of {paper} at scale `{params.scale}` (profile `{params.profile_name}`): "
              f"each switch of papers/{paper}/paper.yaml `readings:` on its headline cell; mean and 95% "
              "t-interval over seeds; diff = reading - default (Welch 95% interval; paired for readings "
              "measured on the same runs); a claim's verdict with this reading's runs in the default cell's "
              "place (trainrepro.stats). kind: code = paper vs official code, text = an ambiguity of "
              "the paper's text, ours = a value neither source fixes.")]
    if len(ran):
        which = ", ".join(f"{r['switch']}={r['reading']} ({r['verdict changes']})" for _, r in changed.iterrows())
        lines.append(f"{len(ran)} non-default readings measured; {len(changed)} change a claim's verdict"
                     + (f": {which}" if which else "")
                     + f"; largest |diff|: {big['switch']}={big['reading']} {big['diff vs default']:+.4f}.")
    return " ".join(lines)


def write_sensitivity_tables(params: Params, results_root: str | Path, tables: Path,
                             claims: list[dict[str, Any]], papers: list[str]) -> dict[str, pd.DataFrame]:
    """reports/tables/<paper>_sensitivity.{md,csv,tex} for every paper that declares readings."""
    out = {}
    for paper in papers:
        table = sensitivity_table(params, paper, claims, results_root)
        if table.empty:
            continue
        write_table(table, Path(tables) / f"{paper}_sensitivity", caption(params, paper, table))
        out[paper] = table
    return out


def sensitivity_section(tables_root: str | Path, paper: str) -> tuple[str, pd.DataFrame]:
    """(caption, table) of a paper's sensitivity table as the aggregate stage wrote it (notebooks)."""
    csv = Path(tables_root) / f"{paper}_sensitivity.csv"
    if not csv.exists():
        return f"`{csv}` is not written: run the aggregate stage (`dvc repro aggregate`).", pd.DataFrame()
    md = csv.with_suffix(".md")
    cap = md.read_text().split("\n\n", 1)[0] if md.exists() else ""
    return cap, pd.read_csv(csv, keep_default_na=False)
