"""The aggregate stage's work: per-cell summaries, paper-vs-ours tables, claim verdicts,
headline metrics for `dvc exp show`, and mean curves for `dvc plots`.

Claims and paper tables carry one verdict column per scale: the pipeline's own results, then
each profile with reference runs (reference_runs/<profile>/, report/reference.py), evaluated
on that profile's own records by the same rules."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..config import Params
from ..io import atomic_write_text, write_json
from ..registry import PAPERS
from ..results import load_histories, load_runs, summarise
from .claims import evaluate_claims, scalar_value
from .reference import (
    DEFAULT_ROOT,
    Scale,
    column,
    merge_paper_comparisons,
    merge_verdicts,
    rebase_scalar_files,
    scales_for,
    scales_record,
)
from .sensitivity import write_sensitivity_tables
from .tables import cells_table, paper_comparison, write_table


def load_paper(name: str) -> dict[str, Any]:
    """A registered paper's reported numbers and tables (its paper.yaml)."""
    return yaml.safe_load(PAPERS.get_checked(name, "paper").reported_path.read_text())


def load_claims() -> list[dict[str, Any]]:
    """Every registered paper's claims with rules, in registry order."""
    return [c for paper in PAPERS.values()
            for c in yaml.safe_load(paper.claims_path.read_text())["claims"]]


def claims_markdown(by_scale: list[tuple[Scale, pd.DataFrame]], params: Params) -> str:
    """claims.md: one verdict column per scale (the pipeline's own, then each scale with
    reference runs), the evidence of every scale in one cell."""
    scales = [s for s, _ in by_scale]
    refs = "".join(f", reference scale `{s.scale}`" for s in scales[1:])
    lines = [f"# Claims of the four papers: verdicts at scale `{params.scale}`{refs}", "",
             (f"Profile `{params.profile_name}`: {params.profile.get('label', '')}. Verdicts come from "
              "the rules in each paper's claims.yaml (src/trainrepro/papers/<paper>/) applied to our per-seed results "
              "(Welch 95% t-interval of each difference; trainrepro.stats decides every verdict): *holds* / "
              "*does not hold* / *inconclusive* (the interval straddles the threshold) / *not comparable* "
              "(the claim is about a dataset this scale does not run) / *not testable at this scale* (the "
              "claim's tolerance or mechanism needs a larger scale) / *not run* (the study or cell is not part of this profile). A verdict at quick scale is about our small-scale analogue, not about "
              "the paper's numbers. A reference scale's verdicts apply the same rules to the committed "
              "records of runs made at that scale (reference_runs/<profile>/, README there)."), "",
             "Scales:"]
    for s, v in by_scale:
        counts = v["verdict"].value_counts().to_dict()
        where = ("this pipeline's results" if s.kind == "pipeline" else
                 f"reference runs in `{s.results_root.as_posix()}` (devices "
                 f"{', '.join(s.provenance.get('devices', []))}; commit "
                 f"`{s.provenance.get('git', {}).get('commit')}`; exported {s.provenance.get('exported_at')})")
        lines.append(f"- **{s.title}** (profile `{s.profile}`), {where}. Summary: "
                     + ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())))
    wide = merge_verdicts(by_scale)
    heads = [column("verdict", s) for s in scales]
    for paper in PAPERS.values():
        sub = wide[wide["paper"] == paper.name]
        if sub.empty:
            continue
        lines += ["", f"## {paper.title}", "",
                  "| id | claim | source | " + " | ".join(heads) + " | evidence |",
                  "|---|---|---|" + "---|" * len(heads) + "---|"]
        for _, r in sub.iterrows():
            evs = [str(r[column("evidence", s)]).replace("|", "/") for s in scales]
            ev = evs[0] if len(scales) == 1 else "<br>".join(
                f"**{s.scale}**: {e}" for s, e in zip(scales, evs))
            lines.append(f"| {r['id']} | {r['statement']} | {r['source']} | "
                         + " | ".join(f"**{r[h]}**" for h in heads) + f" | {ev} |")
    return "\n".join(lines) + "\n"


def aggregate(params: Params, results_root: str = "results", out: str = "reports",
              reference_root: str = DEFAULT_ROOT) -> dict[str, Any]:
    outp = Path(out)
    tables, curves = outp / "tables", outp / "curves"
    studies = params.studies()
    scales = scales_for(params, results_root, reference_root)
    runs_by_study = {s: load_runs(results_root, s) for s in sorted(set(studies) | set(PAPERS))}
    runs_by_scale = [runs_by_study] + [{p: load_runs(s.results_root, p) for p in PAPERS} for s in scales[1:]]
    # the runs each paper's tables, claims and headline see (e.g. of an lr grid the lr chosen on validation)
    paper_runs = [{p: PAPERS[p].select_runs(r[p]) if PAPERS[p].select_runs else r[p] for p in PAPERS}
                  for r in runs_by_scale]
    metrics: dict[str, Any] = {"profile": params.profile_name, "scale": params.scale}
    cell_metrics: dict[str, Any] = {}
    for study in studies:
        runs = runs_by_study[study]
        cells = summarise(runs)
        write_table(runs.drop(columns=["run_dir"]), tables / f"runs_{study}",
                    f"All runs of study `{study}` (scale {params.scale})")
        write_table(cells_table(cells), tables / f"cells_{study}",
                    f"Study `{study}` at scale `{params.scale}`: test accuracy at the reported epoch "
                    f"(rule `{params.raw['train'].get('report_epoch')}`), mean ± std over seeds, "
                    "95% t-interval clipped to [0, 1], n = runs with status ok.")
        cell_metrics[study] = {c["cell"]: {"test_acc": round(float(c["mean"]), 6) if c["n"] else None,
                                      "std": None if pd.isna(c["std"]) else round(float(c["std"]), 6),
                                      "n": int(c["n"])}
                          for _, c in cells.iterrows()}
        hist = load_histories(runs)
        if not hist.empty:
            mean = (hist.groupby(["cell", "epoch"], sort=True)[["train_loss", "val_acc", "test_acc"]]
                    .mean().reset_index())
            for cell, g in mean.groupby("cell"):
                atomic_write_text(curves / study / f"{cell}.csv",
                                  g.drop(columns=["cell"]).to_csv(index=False, float_format="%.6g"))
    named = ", ".join(f"`{s.scale}`" for s in scales)
    for paper in PAPERS:
        cells_by_scale = [(s, summarise(r[paper])) for s, r in zip(scales, paper_runs)]
        for table in load_paper(paper).get("tables", []):
            if table.get("kind") == "classes" or not table.get("entries"):
                continue
            comp = merge_paper_comparisons([(s, paper_comparison(table, c)) for s, c in cells_by_scale])
            write_table(comp, tables / f"{paper}_{table['id']}",
                        f"{paper} {table.get('source', table['id'])}: {table.get('title', '')} — paper "
                        f"value vs ours at scale(s) {named}")
    for paper in PAPERS.values():  # tables in the paper's own layout, where it has them
        if paper.write_tables is None:
            continue
        if paper.name in studies:
            paper.write_tables(results_root, tables)
        for s in scales[1:]:   # a reference scale's own, beside: reference/<profile>/
            if paper.name in s.studies():
                paper.write_tables(str(s.results_root), tables / "reference" / s.profile)
    claims = load_claims()
    by_scale = [(s, evaluate_claims(rebase_scalar_files(claims, s.results_root),
                                    r, ".", scale=s.scale))
                for s, r in zip(scales, paper_runs)]
    verdicts = by_scale[0][1]
    write_table(verdicts, tables / "claims", "Claims and verdicts")
    for s, v in by_scale[1:]:
        write_table(v, tables / f"claims_{s.profile}", f"Claims and verdicts at reference scale {s.title}")
    write_table(merge_verdicts(by_scale), tables / "claims_by_scale", "Claims: one verdict per scale")
    write_json(tables / "scales.json", scales_record(scales))
    atomic_write_text(outp / "claims.md", claims_markdown(by_scale, params))
    write_sensitivity_tables(params, results_root, tables, claims, list(PAPERS))  # item 20
    metrics["claims"] = verdict_counts(verdicts)
    for paper in PAPERS.values():
        metrics[paper.name] = paper_headline(paper, verdicts[verdicts["paper"] == paper.name],
                                             summarise(paper_runs[0][paper.name]), results_root)
    if len(scales) > 1:  # `dvc metrics diff` names a reference claim whose verdict changed
        metrics["reference"] = {s.profile: {"scale": s.scale, "claims": verdict_counts(v), **{
            p: " ".join(f"{r['id']}:{VERDICT_CODES[r['verdict']]}" for _, r in v[v["paper"] == p].iterrows())
            for p in PAPERS}} for s, v in by_scale[1:]}
    # Per-cell numbers and the scalars behind claims (e.g. M4's Proposition-1 violations, L7's
    # time ratio error): a second file, kept out of `dvc exp show`'s default columns.
    cell_metrics["claim_scalars"] = {
        f"{c['id']}.{r['key']}": v for c in rebase_scalar_files(claims, results_root)
        for r in (c.get("rules") or [c["rule"]])
        if r["type"] == "scalar" and (v := scalar_value(r, Path("."))[0]) is not None}
    write_json(tables / "metrics_cells.json", cell_metrics)
    write_json(outp / "metrics.json", metrics)
    return metrics


VERDICT_CODES = {"holds": "H", "does not hold": "F", "inconclusive": "I", "not comparable": "NC",
                 "not testable at this scale": "NT", "not run": "NR"}


def verdict_counts(verdicts: pd.DataFrame) -> dict[str, int]:
    """Claims per verdict, every verdict named (0 where none), keys without spaces."""
    counts = verdicts["verdict"].value_counts().to_dict() if len(verdicts) else {}
    return {v.replace(" ", "_"): int(counts.get(v, 0)) for v in VERDICT_CODES}


def paper_headline(paper: Any, verdicts: pd.DataFrame, cells: pd.DataFrame,
                   results_root: str = "results") -> dict[str, Any]:
    """What `dvc exp show` shows of one paper: its verdict counts, every claim's verdict in one
    string (`M1:H M2:F ...`; H holds, F does not hold, I inconclusive, NC not comparable, NR not
    run, NT not testable at this scale) so that `dvc metrics diff` names the claims whose verdict changed, and the mean test
    accuracy of its headline cells (the paper registers which, or registers a `headline`
    function that computes its numbers from its results)."""
    out: dict[str, Any] = dict(verdict_counts(verdicts))
    out["verdicts"] = " ".join(f"{r['id']}:{VERDICT_CODES[r['verdict']]}" for _, r in verdicts.iterrows())
    if paper.headline is not None:
        out.update(paper.headline(results_root))
        return out
    for label, sel in paper.headline_cells.items():
        m = np.ones(len(cells), dtype=bool)
        for k, v in sel.items():
            m &= np.isclose(cells[k].astype(float), float(v)) if k == "noise" else (cells[k] == v).to_numpy()
        hit = cells[m & (cells["n"] > 0).to_numpy()] if len(cells) else cells
        out[label] = round(float(hit.iloc[0]["mean"]), 4) if len(hit) else None
    return out
