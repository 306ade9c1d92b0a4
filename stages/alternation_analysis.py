"""Part of stage `train_alternation`: Fig. 3's iterations to SGD's final error (claims A4, A5),
the MaskT readings (A3) and the training-time ratios (A9) from the alternation study's run
records -> results/alternation/scalars.json."""
from pathlib import Path

from trainrepro.cli import analysis_args, guarded
from trainrepro.io import write_json
from trainrepro.papers import load_all
from trainrepro.papers.alternation.study import scalars
from trainrepro.results import load_runs

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    args, params = analysis_args(__doc__)
    out = scalars(load_runs(args.results, "alternation"))
    out["profile"], out["scale"] = params.profile_name, params.scale
    write_json(Path(args.results) / "alternation" / "scalars.json", out)
    print(f"alternation analysis: iteration_ratio = {out.get('iteration_ratio')}, "
          f"maskt_drop = {out.get('maskt_drop')}, b_alt_time_ratio = {out.get('b_alt_time_ratio')}")


if __name__ == "__main__":
    guarded(main)
