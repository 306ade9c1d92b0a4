"""Claim verdicts: each claim of claims.yaml is a rule over our per-seed results.

Verdicts: `holds`, `does not hold`, `inconclusive` (the 95% interval of the difference
straddles the threshold), `not comparable` (the claim names a dataset this scale does not run,
e.g. CIFAR-100 at quick scale), `not run` (a needed study, cell or file is absent).
Comparisons use Welch's t-interval of the difference of means over seeds, so three seeds
with overlapping spreads give `inconclusive` rather than a verdict the data cannot carry.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..io import read_json

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
NOT_COMPARABLE = "not comparable"
GROUP_KEYS = ["dataset", "model", "noise"]
OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass
class Verdict:
    verdict: str
    evidence: str


def diff_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) - mean(b), low, high): Welch t-interval; infinite width with < 2 seeds a side."""
    d = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return d, -np.inf, np.inf
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return d, d, d
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return d, d - half, d + half


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


def _combine(parts: list[str]) -> str:
    if not parts:
        return NOT_RUN
    if any(p == FAILS for p in parts):
        return FAILS
    if all(p == HOLDS for p in parts):
        return HOLDS
    return INCONCLUSIVE


def _compare(d: float, lo: float, hi: float, thr: float) -> str:
    """Is the difference above `thr`? holds / does not hold / inconclusive."""
    if lo > thr:
        return HOLDS
    if hi < thr:
        return FAILS
    return INCONCLUSIVE


def _selectors(rule: dict[str, Any]) -> list[dict[str, Any]]:
    sels = [rule.get("where") or {}]
    for k in ("a", "b"):
        if k in rule:
            sels.append(rule[k])
    for k in ("others", "sequence", "each"):
        sels.extend(rule.get(k, []))
    return sels


def scalar_value(rule: dict[str, Any], root: Path) -> tuple[float | None, str]:
    """The number a `scalar` rule reads (file + dotted key), or None and why it is absent."""
    path = Path(root) / rule["file"]
    if not path.exists():
        return None, f"{rule['file']} not written at this scale"
    val: Any = read_json(path)
    for part in rule["key"].split("."):
        if not isinstance(val, dict) or part not in val:
            return None, f"{rule['file']} has no key {rule['key']}"
        val = val[part]
    if val is None:
        return None, f"{rule['key']} is null in {rule['file']}"
    return float(val), ""


def evaluate_rule(rule: dict[str, Any], runs: pd.DataFrame, root: Path) -> Verdict:
    t = rule["type"]
    if t == "scalar":
        val, why = scalar_value(rule, root)
        if val is None:
            return Verdict(NOT_RUN, why)
        ok = OPS[rule["op"]](val, float(rule["value"]))
        return Verdict(HOLDS if ok else FAILS, f"{rule['key']} = {val:.4g} "
                                               f"(needs {rule['op']} {rule['value']})")
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
                v = _compare(d, lo, hi, float(rule.get("margin", 0.0)))
            else:
                tol = float(rule["tol"])
                v = HOLDS if (-tol <= lo and hi <= tol) else FAILS if (lo > tol or hi < -tol) else INCONCLUSIVE
            verdicts.append(v)
            ev.append(f"{_name(rule['a'])} - {_name(rule['b'])} @ {_fmt_group(key)}: {d:+.4f} "
                      f"[{lo:+.4f}, {hi:+.4f}] (n={len(a)},{len(b)})")
    elif t == "at_most":
        tol = float(rule.get("tol", 0.0))
        for sel in rule["each"]:
            for key, (a, b) in _groups(runs, [sel, rule["b"]], where, metric):
                d, lo, hi = diff_interval(a, b)
                v = HOLDS if hi <= tol else FAILS if lo > tol else INCONCLUSIVE
                verdicts.append(v)
                ev.append(f"{_name(sel)} - {_name(rule['b'])} @ {_fmt_group(key)}: {d:+.4f} "
                          f"[{lo:+.4f}, {hi:+.4f}]")
    elif t == "best":
        for key, vals in _groups(runs, [rule["a"], *rule["others"]], where, metric):
            a, others = vals[0], vals[1:]
            sub = []
            for sel, o in zip(rule["others"], others):
                d, lo, hi = diff_interval(a, o)
                sub.append(_compare(d, lo, hi, 0.0))
            verdicts.append(_combine(sub))
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
                sub.append(_compare(d, lo, hi, 0.0))
            verdicts.append(_combine(sub))
            ev.append(f"{_fmt_group(key)}: " + " -> ".join(
                f"{_name(sel)} {np.mean(v):.4f}" for sel, v in zip(seq, vals)))
    else:
        raise ValueError(f"unknown rule type {t!r}")
    if not verdicts:
        return Verdict(NOT_RUN, "needed cells absent at this scale")
    return Verdict(_combine(verdicts), "; ".join(ev))


def evaluate_claims(claims: list[dict[str, Any]], runs_by_paper: dict[str, pd.DataFrame],
                    root: str | Path = ".") -> pd.DataFrame:
    """One row per claim: id, paper, statement, verdict, evidence."""
    rows = []
    for c in claims:
        runs = runs_by_paper.get(c["paper"], pd.DataFrame(columns=["status"] + GROUP_KEYS + ["method"]))
        rules = c.get("rules") or [c["rule"]]
        vs = [evaluate_rule(r, runs, Path(root)) if not runs.empty or r["type"] == "scalar"
              else Verdict(NOT_RUN, "study not run at this scale") for r in rules]
        kinds = [v.verdict for v in vs]
        verdict = next((k for k in (NOT_RUN, NOT_COMPARABLE) if all(x == k for x in kinds)), None) \
            or _combine([INCONCLUSIVE if k in (NOT_RUN, NOT_COMPARABLE) else k for k in kinds])
        rows.append({"id": c["id"], "paper": c["paper"], "statement": c["statement"],
                     "source": c.get("source", ""), "verdict": verdict,
                     "evidence": " | ".join(v.evidence for v in vs)})
    return pd.DataFrame(rows, columns=["id", "paper", "statement", "source", "verdict", "evidence"])
