"""Before/after of every per-cell summary (reports/tables/cells_<study>.csv) and every claim verdict
between two report trees. Usage: python benchmarks/before_after_cells.py BEFORE_REPORTS AFTER_REPORTS
(prints Markdown: cells (runs_<study>.csv) whose mean test accuracy moved, cells only on one side, claim verdicts)."""
import sys
from pathlib import Path

import pandas as pd

def cells(root: Path) -> pd.DataFrame:
    """Per (study, cell): mean ± std and n of the test accuracy of the ok runs (runs_<study>.csv)."""
    rows = []
    for p in sorted((root / "tables").glob("runs_*.csv")):
        df = pd.read_csv(p)
        for cell, g in df[df["status"] == "ok"].groupby("cell"):
            v = g["test_acc"].astype(float)
            rows.append({"study": p.stem[len("runs_"):], "cell": cell, "n": len(v),
                         "acc": f"{v.mean():.4f}" + (f" ± {v.std(ddof=1):.4f}" if len(v) > 1 else "")})
    return pd.DataFrame(rows)


def main() -> None:
    before, after = Path(sys.argv[1]), Path(sys.argv[2])
    b, a = cells(before), cells(after)
    m = b.merge(a, on=["study", "cell"], how="outer", suffixes=(" before", " after"), indicator=True)
    print("| study | cell | before: test acc (mean ± std, n) | after |")
    print("|---|---|---|---|")
    for _, r in m.iterrows():
        if r["_merge"] == "both" and r["acc before"] == r["acc after"]:
            continue
        fmt = lambda side: "—" if pd.isna(r[f"acc {side}"]) else f"{r[f'acc {side}']} (n={int(r[f'n {side}'])})"  # noqa: E731
        print(f"| {r['study']} | {r['cell']} | {fmt('before')} | {fmt('after')} |")
    same = int(((m["_merge"] == "both") & (m["acc before"] == m["acc after"])).sum())
    print(f"\n{same} cells unchanged (not listed).\n")
    cb = pd.read_csv(before / "tables" / "claims.csv").set_index("id")
    ca = pd.read_csv(after / "tables" / "claims.csv").set_index("id")
    va = [c for c in ca.columns if c.startswith("verdict")][0]
    print("| claim | before | after |\n|---|---|---|")
    for i in list(ca.index) + [i for i in cb.index if i not in ca.index]:
        print(f"| {i} | {cb['verdict'].get(i, '—')} | {ca[va].get(i, '— (removed)')} |")


if __name__ == "__main__":
    main()
