"""The claims dashboard that opens the overview report: every paper's claims with their verdict
at each scale, colour-coded, each paper linking to its own report."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ..registry import PAPERS

COLOURS = {"holds": "#c8e6c9", "does not hold": "#ffcdd2", "inconclusive": "#fff3c4",
           "not comparable": "#e0e0e0", "not testable at this scale": "#d7e3f4", "not run": "#f5f5f5"}
LEGEND = {"holds": "the rule's 95% interval lies on the claimed side",
          "does not hold": "it lies on the other side",
          "inconclusive": "it straddles the threshold (more seeds or a larger scale needed)",
          "not comparable": "the claim is about data this scale does not run",
          "not testable at this scale": "the claim's tolerance or mechanism needs a larger scale",
          "not run": "the study or cell is not part of this scale"}


STYLE = ("<style>#claims-dashboard table{border-collapse:collapse;margin-bottom:1em}"
         "#claims-dashboard th,#claims-dashboard td{border:1px solid #bbb;padding:3px 8px;"
         "text-align:left;vertical-align:top}#claims-dashboard th{background:#eee}</style>")


def dashboard_html(verdicts_by_scale: dict[str, pd.DataFrame], reports: set[str]) -> str:
    """An HTML table per paper: claim id, statement, one colour-coded verdict column per scale.

    verdicts_by_scale: scale label -> claims table (columns id, paper, statement, verdict,
    evidence); reports: names of the paper reports that exist (linked as <name>.html)."""
    scales = list(verdicts_by_scale)
    parts = ['<div id="claims-dashboard">', STYLE, "<h2>Claims dashboard</h2>",
             "<p>" + " ".join(f'<span style="background:{COLOURS[v]};padding:1px 6px;'
                              f'border-radius:3px" title="{html.escape(LEGEND[v])}">{v}</span>'
                              for v in COLOURS) + "</p>",
             "<p>" + "; ".join(f"<b>{html.escape(v)}</b>: {html.escape(d)}" for v, d in LEGEND.items())
             + ".</p>"]
    first = verdicts_by_scale[scales[0]] if scales else pd.DataFrame(columns=["paper"])
    for paper in PAPERS.values():
        rows = first[first["paper"] == paper.name]
        if rows.empty:
            continue
        title = html.escape(paper.title.replace("*", ""))
        link = (f' — <a href="{paper.name}.html">the paper\'s report</a>' if paper.name in reports
                else " — no report at this scale")
        parts.append(f"<h3>{title}{link}</h3>")
        head = "".join(f"<th>{html.escape(s)}</th>" for s in scales)
        parts.append(f'<table class="tr-dashboard"><thead><tr><th>claim</th><th>statement</th>'
                     f"{head}</tr></thead><tbody>")
        for _, r in rows.iterrows():
            cells = []
            for s in scales:
                v = verdicts_by_scale[s]
                hit = v[v["id"] == r["id"]]
                verdict = hit.iloc[0]["verdict"] if len(hit) else "not run"
                evidence = hit.iloc[0]["evidence"] if len(hit) else ""
                cells.append(f'<td style="background:{COLOURS.get(verdict, "#fff")}" '
                             f'title="{html.escape(str(evidence))}">{html.escape(verdict)}</td>')
            parts.append(f"<tr><td>{html.escape(r['id'])}</td><td>{html.escape(str(r['statement']))}"
                         f"</td>{''.join(cells)}</tr>")
        parts.append("</tbody></table>")
    parts.append("</div>")
    return "\n".join(parts)


def load_verdicts(tables_root: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(tables_root) / "claims.csv")
