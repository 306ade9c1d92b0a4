"""What a reviewer sees of a value or a table: no Python reprs, readable recipes and switches.

`readable` turns a cell value into text (dicts as `key = value; ...`, lists as `a, b`, floats
with 4 significant decimals); `show` renders a DataFrame as a plain HTML table (no index) for
the notebooks; `clip_note` is the sentence every table with clipped accuracy intervals carries.
"""
from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
from IPython.display import HTML, display

CLIP_NOTE = ("95% intervals are Student-t intervals over seeds, clipped to [0, 1] (an accuracy "
             "cannot leave that range).")


def readable(value: Any) -> str:
    """A cell value as text a person reads (never a Python or JSON repr)."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return format(value, "g") if abs(value) >= 1e4 or value == int(value) else f"{value:.4g}"
    if isinstance(value, dict):
        if not value:
            return "(defaults)"
        return "; ".join(f"{k} = {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(readable(v) for v in value) if value else "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def readable_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns (dicts, lists, mixed) mapped through `readable`; numbers kept."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].map(lambda v: v if isinstance(v, str) else readable(v))
    return out


def show(df: pd.DataFrame, caption: str = "") -> None:
    """Display a DataFrame as a plain HTML table without the index (for the notebooks)."""
    shown = readable_frame(df)
    for c in shown.columns:
        if shown[c].dtype.kind == "f":
            whole = bool(((shown[c].dropna() % 1) == 0).all())
            spec = "g" if "noise" in str(c) or whole else ".4f"
            shown[c] = shown[c].map(lambda x, spec=spec: "—" if pd.isna(x) else format(x, spec))
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    table = shown.to_html(index=False, escape=True, border=0, classes="dataframe tr-table", na_rep="—")
    display(HTML(table.replace(">\n  <thead>", f">{cap}\n  <thead>", 1) if cap else table))
