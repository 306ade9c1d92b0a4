"""Reading-sensitivity tables (issue 9 item 20): per paper, how much the headline result and the
verdict of the claims it feeds depend on each reading of each switch (sensitivity.py plans the
runs; this module reads them).

One row per (switch, reading): its value, the cell's mean and 95% t-interval over seeds, the
difference to the default reading with its 95% interval (Welch; paired t when both readings are
measured on the same runs, as MaskT's), and each named claim's verdict with the default's runs
and with this reading's runs put in the default cell's place (the paper's `claim_scalars`
re-derives the study-level scalar files a claim reads; a paper without it, and test-time readings,
leave those claims "not re-evaluated").
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import Params
from ..io import read_json, write_json
from ..registry import PAPERS
from ..results import load_index, load_runs
from ..sensitivity import SENSITIVITY_STUDY, Planned, enabled_papers, plan
from ..stats import NOT_RUN, diff_interval, mean_ci, paired_interval
from .claims import evaluate_claims
from .tables import fmt_ci, fmt_diff_ci, write_table

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


def _has_scalar(claim: dict[str, Any]) -> bool:
    return any(r["type"] == "scalar" for r in (claim.get("rules") or [claim["rule"]]))


def _index_runs(results_root: str | Path, study: str) -> list[dict[str, Any]]:
    """A study's index entries with absolute run directories (to be re-read from another tree)."""
    base = Path(results_root).resolve().parent
    out = []
    for e in load_index(results_root, study)["runs"]:
        d = Path(e["run_dir"])
        d = d if d.is_absolute() else d.resolve() if d.exists() else base / d
        out.append({**e, "run_dir": str(d)})
    return out


def _verdicts(claims: list[dict[str, Any]], params: Params, paper: str,
              index_runs: list[dict[str, Any]]) -> dict[str, str]:
    """Each claim's verdict on a results tree whose `paper` study holds `index_runs`; the scalar
    files its rules read are re-derived there by the paper's `claim_scalars` (a claim with a
    scalar rule is left out when the paper has none)."""
    hook = PAPERS[paper].claim_scalars
    usable = [c for c in claims if hook is not None or not _has_scalar(c)]
    if not usable or not index_runs:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        res = Path(tmp) / "results"
        write_json(res / paper / "index.json", {"study": paper, "runs": index_runs})
        if hook is not None and any(_has_scalar(c) for c in usable):
            for stem, content in hook(str(res), params).items():
                write_json(res / paper / f"{stem}.json", content)
        v = evaluate_claims(usable, {paper: load_runs(res, paper)}, tmp, scale=params.scale)
    return dict(zip(v["id"], v["verdict"]))


def _substituted(index_runs: list[dict[str, Any]], p: Planned,
                 reading_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's index with the default cell's runs replaced by the reading's (renamed to the
    default cell and method, so every claim's selectors find them there)."""
    return [e for e in index_runs if e["cell"] != p.default_cell] + \
        [{**e, "cell": p.default_cell, "method": p.reading.method} for e in reading_runs if e["cell"] == p.cell]


def sensitivity_table(params: Params, paper: str, claims: list[dict[str, Any]],
                      results_root: str | Path = "results") -> pd.DataFrame:
    """The reading-sensitivity table of one paper (every reading of its paper.yaml `readings:`)."""
    root = Path(results_root).resolve().parent
    enabled = paper in enabled_papers(params)
    planned = plan(params, [paper])
    studies = {paper: load_runs(results_root, paper),
               SENSITIVITY_STUDY: load_runs(results_root, SENSITIVITY_STUDY)}
    paper_claims = {c["id"]: c for c in claims if c["paper"] == paper}
    index = {paper: _index_runs(results_root, paper), SENSITIVITY_STUDY: _index_runs(results_root, SENSITIVITY_STUDY)}
    base_verdicts = _verdicts(list(paper_claims.values()), params, paper, index[paper])
    defaults: dict[tuple[str, str], tuple[Planned, pd.DataFrame]] = {}
    for p in planned:
        if p.is_default:
            defaults[(p.reading.switch, p.reading.method)] = (p, reading_values(p, studies[paper], root))
    rows = []
    for p in planned:
        r = p.reading
        named = [paper_claims[c] for c in r.claims if c in paper_claims]
        row = {"switch": r.switch, "kind": r.kind, "reading": p.label, "value": str(p.value),
               "default": "yes" if p.is_default else "", "cell": p.cell or p.default_cell,
               "metric": r.measured or r.metric, "claims": ", ".join(r.claims), "source": r.source,
               "status": p.status}
        if not enabled and p.status == "run":
            row["status"] = f"not run in profile {params.profile_name!r} (run profile `sensitivity`)"
        # outside the sensitivity profile its runs are not this profile's (even if a tree has them)
        study = studies.get(p.study, pd.DataFrame()) if enabled or p.study != SENSITIVITY_STUDY else pd.DataFrame()
        vals = reading_values(p, study, root) if p.cell and not study.empty else pd.DataFrame()
        d = defaults.get((r.switch, r.method))
        if p.cell and not study.empty:
            mine = study[study["cell"] == p.cell]
            bad = mine[mine["status"] != "ok"]
            if len(bad):
                row["status"] += (f"; {len(bad)} of {len(mine)} runs " + ", ".join(
                    f"{k} ({n})" for k, n in bad["status"].value_counts().items())
                    + (f", first diverged at epoch {int(bad['diverged_epoch'].min())}"
                       if bad["diverged_epoch"].notna().any() else ""))
        if vals.empty or d is None:
            rows.append({**row, "n": 0, "mean": np.nan, "95% CI": "—", "diff vs default": np.nan,
                         "diff 95% CI": "—", "verdict (default)": "", "verdict (this reading)": NOT_RUN,
                         "verdict changes": ""})
            continue
        metric = r.measured or r.metric  # accuracies (test_acc, a MaskT accuracy) stay in [0, 1]
        bounds = (0.0, 1.0) if metric.endswith("acc") or metric.endswith("maskt") else None
        m, _, lo, hi = mean_ci(vals["value"], bounds=bounds)
        dvals = d[1]
        if p.is_default:
            dd, dlo, dhi = 0.0, np.nan, np.nan
        elif r.measured:  # the same runs under two test-time readings: paired by seed
            both = vals.merge(dvals, on="seed", suffixes=("", "_default"))
            dd, dlo, dhi = paired_interval(both["value"], both["value_default"])
        else:
            dd, dlo, dhi = diff_interval(vals["value"], dvals["value"])
        base_v = {c: base_verdicts[c] for c in r.claims if c in base_verdicts}
        if r.measured:  # a test-time reading of the same runs: the claims' inputs do not change
            new_v = {}
        elif p.is_default:
            new_v = base_v
        else:
            new_v = _verdicts(named, params, paper, _substituted(index[paper], p, index[p.study]))
        fmt = [f"{c}: {base_v.get(c, NOT_REEVALUATED)}" for c in r.claims]
        fmt_new = [f"{c}: {new_v.get(c, NOT_REEVALUATED)}" for c in r.claims]
        compared = [c for c in r.claims if c in base_v and c in new_v]
        changed = [c for c in compared if base_v[c] != new_v[c]]
        rows.append({**row, "n": len(vals), "mean": m, "95% CI": fmt_ci(lo, hi), "diff vs default": dd,
                     "diff 95% CI": "" if p.is_default else fmt_diff_ci(dlo, dhi),
                     "verdict (default)": "; ".join(fmt), "verdict (this reading)": "; ".join(fmt_new),
                     "verdict changes": ", ".join(changed) if changed else ("no" if compared else "")})
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
