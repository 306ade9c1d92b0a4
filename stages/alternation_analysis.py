"""Part of stage `train_alternation`: Fig. 3's iterations to SGD's final error (claims A4, A5),
the MaskT drop (A3), each with its 95% interval over runs, and the step-cost ratios against SGD
timed in this process, methods interleaved (A9), from the alternation study's runs (the grid lr
chosen on validation; data from --prepared, default data/prepared) -> results/alternation/scalars.json."""
from pathlib import Path

import torch

from trainrepro.cli import analysis_args, guarded
from trainrepro.engine import resolve_device
from trainrepro.io import write_json
from trainrepro.papers import load_all
from trainrepro.papers.alternation.overhead import study_time_ratios
from trainrepro.papers.alternation.study import scalars, selected_runs
from trainrepro.results import load_runs

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    args, params = analysis_args(__doc__)
    runs = selected_runs(load_runs(args.results, "alternation"))
    out = scalars(runs)
    device = resolve_device(params.runtime["device"])
    if device.type == "cpu":
        torch.set_num_threads(int(params.runtime["threads"]))
    out.update(study_time_ratios(runs, args.prepared, device))
    out["profile"], out["scale"] = params.profile_name, params.scale
    write_json(Path(args.results) / "alternation" / "scalars.json", out)
    print(f"alternation analysis: iteration_ratio = {out.get('iteration_ratio')}, "
          f"maskt_drop = {out.get('maskt_drop')}, b_alt_time_ratio = {out.get('b_alt_time_ratio')}")


if __name__ == "__main__":
    guarded(main)
