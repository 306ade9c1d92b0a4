"""Claim verdicts: each claim of claims.yaml is a rule over our per-seed results.

Verdicts (trainrepro.stats decides every one): `holds`, `does not hold`, `inconclusive` (the
95% interval straddles the threshold), `not comparable` (the claim names a dataset this scale
does not run, e.g. CIFAR-100 at quick scale), `not testable at this scale` (the rule says which
scales can test it: `testable_at`), `not run` (a needed study, cell or file is absent).
Comparisons use Welch's t-interval of the difference of means over seeds, so three seeds with
overlapping spreads give `inconclusive` rather than a verdict the data cannot carry. A claim over
several cells combines their verdicts by the rule's `combine` (default "all"; stats.combine).
A `scalar` rule reads a number from an analysis file; when the file gives an interval
({value, lo, hi}) the verdict is on the interval, otherwise the evidence says it has none.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..io import read_json
from ..stats import FAILS, HOLDS, INCONCLUSIVE, NOT_COMPARABLE, NOT_RUN, NOT_TESTABLE, diff_interval

GROUP_KEYS = ["dataset", "model", "noise"]
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
__all__ = ["HOLDS", "FAILS", "INCONCLUSIVE", "NOT_RUN", "NOT_COMPARABLE", "NOT_TESTABLE",
           "Verdict", "diff_interval", "evaluate_rule", "evaluate_claims", "scalar_value"]


@dataclass
class Verdict:
    verdict: str
    evidence: str


def _select(runs: pd.DataFrame, sel: dict[str, Any]) -> pd.DataFrame:
    m = np.ones(len(runs), dtype=bool)
    for k, v in (sel or {}).items():
        m &= np.asarray(np.isclose(runs[k].astype(float), float(v)) if k == "noise" else runs[k] == v)
    return runs[m]


def _groups(runs: pd.DataFrame, selectors: list[dict[str, Any]], where: dict[str, Any],
            metric: str) -> list[tuple[tuple, list[np.ndarray]]]:
    """Per (dataset, model, noise) group present for every selector: the per-seed values."""
    base = _select(runs[runs["status"] == "ok"], where)
    free = [k for k in GROUP_KEYS if not any(k in s for s in selectors)]
    parts = [_select(base, s) for s in selectors]
    if any(p.empty for p in parts):
        return []
    keys = set(map(tuple, parts[0][free].drop_duplicates().to_numpy().tolist())) if free else {()}
    for p in parts[1:]:
        keys &= set(map(tuple, p[free].drop_duplicates().to_numpy().tolist())) if free else {()}
    out = []
    for key in sorted(keys, key=str):
        vals = []
        for p in parts:
            q = p
            for k, v in zip(free, key):
                q = q[q[k] == v]
            vals.append(q[metric].to_numpy(dtype=float))
        out.append((key, vals))
    return out


def _name(sel: dict[str, Any]) -> str:
    return "/".join(str(v) for v in sel.values()) or "all"


def _fmt_group(free_key: tuple) -> str:
    return "/".join(str(k) for k in free_key) or "all"


def _selectors(rule: dict[str, Any]) -> list[dict[str, Any]]:
    sels = [rule.get("where") or {}]
    for k in ("a", "b"):
        if k in rule:
            sels.append(rule[k])
    for k in ("others", "sequence", "each"):
        sels.extend(rule.get(k, []))
    return sels


def scalar_value(rule: dict[str, Any], root: Path) -> tuple[Any, str]:
    """The value a `scalar` rule reads (file + dotted key): a number or {value, lo, hi}; None
    and why it is absent."""
    path = Path(root) / rule["file"]
    if not path.exists():
        return None, f"{rule['file']} not written at this scale"
    val: Any = read_json(path)
    for part in rule["key"].split("."):
        if not isinstance(val, dict) or part not in val:
            return None, f"{rule['file']} has no key {rule['key']}"
        val = val[part]
    if val is None or (isinstance(val, dict) and val.get("value") is None):
        return None, f"{rule['key']} is null in {rule['file']}"
    return val, ""


def _scalar_verdict(rule: dict[str, Any], root: Path) -> Verdict:
    val, why = scalar_value(rule, root)
    if val is None:
        return Verdict(NOT_RUN, why)
    op, thr = rule["op"], float(rule["value"])
    if isinstance(val, dict):  # an estimate with its interval: decided on the interval
        v, lo, hi = float(val["value"]), float(val["lo"]), float(val["hi"])
        verdict = stats.above(lo, hi, thr) if op in (">", ">=") else stats.below(lo, hi, thr)
        return Verdict(verdict, f"{rule['key']} = {v:.4g} [{lo:.4g}, {hi:.4g}] (needs {op} {thr:g})")
    ok = OPS[op](float(val), thr)
    return Verdict(HOLDS if ok else FAILS, f"{rule['key']} = {float(val):.4g} (needs {op} {thr:g}; "
                                           "a computed value without an interval)")


def evaluate_rule(rule: dict[str, Any], runs: pd.DataFrame, root: Path, scale: str | None = None) -> Verdict:
    t = rule["type"]
    if scale is not None and rule.get("testable_at") and scale not in rule["testable_at"]:
        return Verdict(NOT_TESTABLE, f"testable at {', '.join(rule['testable_at'])} only"
                                     + (f": {rule['why_not_testable']}" if rule.get("why_not_testable") else ""))
    if t == "scalar":
        return _scalar_verdict(rule, root)
    metric = rule.get("metric", "test_acc")
    where = rule.get("where") or {}
    named = {s.get("dataset") for s in _selectors(rule)} - {None}
    missing = sorted(d for d in named if d not in set(runs["dataset"]))
    if missing:
        return Verdict(NOT_COMPARABLE, f"the claim is about {', '.join(missing)}; this scale runs "
                                       f"{', '.join(sorted(set(runs['dataset']))) or 'nothing'}")
    verdicts, ev = [], []
    if t in ("greater", "within"):
        for key, (a, b) in _groups(runs, [rule["a"], rule["b"]], where, metric):
            d, lo, hi = diff_interval(a, b)
            if t == "greater":
                v = stats.above(lo, hi, float(rule.get("margin", 0.0)))
            else:
                v = stats.within(lo, hi, float(rule["tol"]))
            verdicts.append(v)
            ev.append(f"{_name(rule['a'])} - {_name(rule['b'])} @ {_fmt_group(key)}: {d:+.4f} "
                      f"[{lo:+.4f}, {hi:+.4f}] (n={len(a)},{len(b)})")
    elif t == "at_most":
        tol = float(rule.get("tol", 0.0))
        for sel in rule["each"]:
            for key, (a, b) in _groups(runs, [sel, rule["b"]], where, metric):
                d, lo, hi = diff_interval(a, b)
                v = stats.at_most(lo, hi, tol)
                verdicts.append(v)
                ev.append(f"{_name(sel)} - {_name(rule['b'])} @ {_fmt_group(key)}: {d:+.4f} "
                          f"[{lo:+.4f}, {hi:+.4f}]")
    elif t == "best":
        for key, vals in _groups(runs, [rule["a"], *rule["others"]], where, metric):
            a, others = vals[0], vals[1:]
            sub = []
            for sel, o in zip(rule["others"], others):
                d, lo, hi = diff_interval(a, o)
                sub.append(stats.above(lo, hi, 0.0))
            verdicts.append(stats.combine(sub))
            top = max(float(np.mean(v)) for v in vals)
            best = int(np.argmax([np.mean(o) for o in others]))
            ev.append(f"{_fmt_group(key)}: {_name(rule['a'])} {np.mean(a):.4f}, best other "
                      f"{_name(rule['others'][best])} {np.mean(others[best]):.4f}"
                      f"{' (highest mean)' if np.mean(a) >= top else ''}")
    elif t == "increasing":
        seq = rule["sequence"]
        for key, vals in _groups(runs, seq, where, metric):
            sub = []
            for x, y in zip(vals, vals[1:]):
                d, lo, hi = diff_interval(y, x)
                sub.append(stats.above(lo, hi, 0.0))
            verdicts.append(stats.combine(sub))
            ev.append(f"{_fmt_group(key)}: " + " -> ".join(
                f"{_name(sel)} {np.mean(v):.4f}" for sel, v in zip(seq, vals)))
    else:
        raise ValueError(f"unknown rule type {t!r}")
    if not verdicts:
        return Verdict(NOT_RUN, "needed cells absent at this scale" + _dropped_note(rule, runs))
    return Verdict(stats.combine(verdicts, rule.get("combine", "all")), "; ".join(ev) + _dropped_note(rule, runs))


def _dropped_note(rule: dict[str, Any], runs: pd.DataFrame) -> str:
    """(issue 9 item 10) The groups a rule leaves out because only some of its sides have a cell
    there, named in the evidence: a claim never drops a cell silently."""
    sels = _selectors(rule)[1:]
    free = [k for k in GROUP_KEYS if not any(k in s for s in sels)]
    if not free or not sels:
        return ""
    base = _select(runs[runs["status"] == "ok"], rule.get("where") or {})
    present = [set(map(tuple, _select(base, s)[free].drop_duplicates().to_numpy().tolist())) for s in sels]
    dropped = sorted(set.union(*present) - set.intersection(*present), key=str)
    if not dropped:
        return ""
    missing = [(key, [_name(s) for s, got in zip(sels, present) if key not in got]) for key in dropped]
    return " (not compared, a side has no cell: " + "; ".join(
        f"{_fmt_group(key)} lacks {', '.join(names)}" for key, names in missing) + ")"


def evaluate_claims(claims: list[dict[str, Any]], runs_by_paper: dict[str, pd.DataFrame],
                    root: str | Path = ".", scale: str | None = None) -> pd.DataFrame:
    """One row per claim: id, paper, statement, verdict, evidence (rules of a claim combine by
    the claim's `combine`, default "all"). `scale` (the profile's scale) decides `testable_at`."""
    rows = []
    for c in claims:
        runs = runs_by_paper.get(c["paper"], pd.DataFrame(columns=["status"] + GROUP_KEYS + ["method"]))
        rules = c.get("rules") or [c["rule"]]
        vs = [evaluate_rule(r, runs, Path(root), scale) if not runs.empty or r["type"] == "scalar"
              or (scale is not None and r.get("testable_at") and scale not in r["testable_at"])
              else Verdict(NOT_RUN, "study not run at this scale") for r in rules]
        verdict = stats.combine([v.verdict for v in vs], c.get("combine", "all"))
        rows.append({"id": c["id"], "paper": c["paper"], "statement": c["statement"],
                     "source": c.get("source", ""), "verdict": verdict,
                     "evidence": " | ".join(v.evidence for v in vs)})
    return pd.DataFrame(rows, columns=["id", "paper", "statement", "source", "verdict", "evidence"])
