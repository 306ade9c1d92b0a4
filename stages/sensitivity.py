"""Stage `train_sensitivity`: every paper's switches under each reading (issue 9 item 20).

Reads: params.yaml (the active profile's `sensitivity:`), each paper's paper.yaml `readings:`,
data/prepared/, results/mentors/ (MentorNet cells). Writes: results/sensitivity/<cell>/seed<k>/
and results/sensitivity/index.json (an empty index when the profile runs no readings). The runs
go through the ordinary runner: cached by config hash."""
import argparse
import time

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.papers import load_all
from trainrepro.runner import run_study
from trainrepro.sensitivity import SENSITIVITY_STUDY, enabled_papers, sensitivity_runs

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    params = load_params(args.params)
    t0 = time.perf_counter()
    runs = sensitivity_runs(params)
    summaries = run_study(params, SENSITIVITY_STUDY, args.prepared, args.results, runs=runs)
    print(f"{SENSITIVITY_STUDY}: papers {', '.join(enabled_papers(params)) or '(none)'}; {len(runs)} runs, "
          f"{len(summaries)} trained now, {len(runs) - len(summaries)} up to date; "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    guarded(main)
