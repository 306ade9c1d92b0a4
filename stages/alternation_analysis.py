"""Part of stage `train_alternation`: Fig. 3's iterations to SGD's final error (claims A4, A5),
the MaskT readings (A3) and the training-time ratios (A9) from the alternation study's run
records -> results/alternation/scalars.json."""
import argparse
from pathlib import Path

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.io import write_json
from trainrepro.papers import load_all
from trainrepro.papers.alternation.study import scalars
from trainrepro.results import load_runs

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    params = load_params(args.params)
    out = scalars(load_runs(args.results, "alternation"))
    out["profile"], out["scale"] = params.profile_name, params.scale
    write_json(Path(args.results) / "alternation" / "scalars.json", out)
    print(f"alternation analysis: iteration_ratio = {out.get('iteration_ratio')}, "
          f"maskt_drop = {out.get('maskt_drop')}, b_alt_time_ratio = {out.get('b_alt_time_ratio')}")


if __name__ == "__main__":
    guarded(main)
