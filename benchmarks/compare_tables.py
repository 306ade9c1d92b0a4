"""Compare reports/tables/*.csv of two checkouts, ignoring timing and hash columns (used to show that a
refactor leaves every result unchanged). Usage: python benchmarks/compare_tables.py BEFORE_DIR AFTER_DIR"""
import sys
from pathlib import Path
import pandas as pd
a, b = Path(sys.argv[1]), Path(sys.argv[2])
SKIP = ("time", "wall", "hash", "_s", "peak", "memory", "cpu", "threads", "seconds")
bad = 0
fa = sorted(p.name for p in (a / "reports/tables").glob("*.csv"))
fb = sorted(p.name for p in (b / "reports/tables").glob("*.csv"))
if fa != fb:
    print("file sets differ:", set(fa) ^ set(fb)); bad += 1
for name in sorted(set(fa) & set(fb)):
    x = pd.read_csv(a / "reports/tables" / name); y = pd.read_csv(b / "reports/tables" / name)
    cols = [c for c in x.columns if not any(k in c.lower() for k in SKIP)]
    if list(x.columns) != list(y.columns):
        print(name, "columns differ", set(x.columns) ^ set(y.columns)); bad += 1; continue
    x, y = x[cols].astype(str).fillna(""), y[cols].astype(str).fillna("")
    if x.shape != y.shape:
        print(name, "shape", x.shape, y.shape); bad += 1; continue
    diff = (x.astype(str) != y.astype(str))
    if diff.values.any():
        for c in diff.columns[diff.any()]:
            i = diff[c].idxmax()
            print(f"{name}: column {c!r} differs, e.g. row {i}: {x[c][i]!r} vs {y[c][i]!r}")
        bad += 1
print("tables compared:", len(fa), "differing:", bad)
