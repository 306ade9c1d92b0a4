"""Stage `report`: execute every reports/*.ipynb with papermill and render offline HTML.

Reads: params.yaml, reports/*.ipynb, reports/tables/, reports/curves/, results/. Writes:
reports/executed/*.ipynb (with code), reports/html/*.html (self-contained, no code),
reports/figures/*.png."""
import argparse
from pathlib import Path

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.papers import load_all
from trainrepro.registry import PAPERS
from trainrepro.parallel import run_jobs
from trainrepro.report.notebooks import run_notebook_job

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--reports", default="reports")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    params = load_params(args.params)
    rep = Path(args.reports)
    jobs = []
    for template in sorted(rep.glob("*.ipynb")):
        if template.stem in PAPERS and template.stem not in params.studies():
            print(f"report: {template.name} skipped (study {template.stem!r} is not in profile "
                  f"{params.profile_name!r})")
            continue
        jobs.append((template, rep / "executed" / template.name, rep / "html" / f"{template.stem}.html",
                     {"results_root": args.results, "tables_root": str(rep / "tables"),
                      "figures_root": str(rep / "figures"), "scale": params.scale,
                      "profile": params.profile_name}))
    # Notebooks are independent (each writes its own files): run them side by side.
    workers = 1 if params.runtime["device"] == "cuda" else int(params.runtime["workers"])
    run_jobs(run_notebook_job, jobs, workers=workers, threads=int(params.runtime["threads"]),
             desc="report", progress=bool(params.runtime["progress"]), unit="notebook",
             label=lambda job: job[0].name)
    for template, _, html, _ in jobs:
        print(f"report: {template.name} -> {html}")


if __name__ == "__main__":
    guarded(main)
