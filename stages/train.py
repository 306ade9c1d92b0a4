"""Stage `train_<study>`: run every cell x seed of one study of the active profile (study
`sensitivity`: every paper's switches under each reading, trainrepro.sensitivity).

Reads: params.yaml, data/prepared/, results/mentors/ (MentorNet runs). Writes:
results/<study>/<cell>/seed<k>/{metrics.json, history.csv} and results/<study>/index.json.
A run whose record matches its config hash is skipped; an interrupted one resumes from its
checkpoint. Progress (runs done/total, the last run finished) on stderr."""
import argparse

from trainrepro.cli import guarded
from trainrepro.config import expand_study, load_params
from trainrepro.papers import load_all
from trainrepro.runner import run_study
from trainrepro.sensitivity import SENSITIVITY_STUDY, sensitivity_runs

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    params = load_params(args.params)
    if args.study == SENSITIVITY_STUDY:  # an empty index where the profile runs no readings
        runs = sensitivity_runs(params)
    else:
        runs = expand_study(params, args.study) if args.study in params.studies() else []
    summaries = run_study(params, args.study, args.prepared, args.results, runs=runs)
    print(f"{args.study}: {len(runs)} runs, {len(summaries)} trained now, "
          f"{len(runs) - len(summaries)} up to date")


if __name__ == "__main__":
    guarded(main)
