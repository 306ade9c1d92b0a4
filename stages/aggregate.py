"""Stage `aggregate`: per-cell statistics, paper-vs-ours tables, claim verdicts, metrics.

Reads: params.yaml, results/ (every study and the mentor stage), reference_runs/ (committed
records of larger-scale runs, one verdict column per profile), each paper's paper.yaml and
claims.yaml. Writes: reports/tables/*.{md,csv,tex}, reports/claims.md, reports/curves/,
reports/metrics.json (headline metrics for `dvc exp show`)."""
import argparse

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.papers import load_all
from trainrepro.report.aggregate import aggregate

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="reports")
    ap.add_argument("--references", default="reference_runs")
    args = ap.parse_args()
    m = aggregate(load_params(args.params), args.results, args.out, args.references)
    print(f"aggregate: scale {m['scale']}; claims {m['claims']}"
          + "".join(f"; reference {p}: {r['claims']}" for p, r in m.get("reference", {}).items()))


if __name__ == "__main__":
    guarded(main)
