"""Part of stage `train_llbsgd`: lr selection on validation, iterations to the target loss and
the ratio to SGD (claim B1), robustness spreads (B2-B6), Tables 2-4 / Figs. 5-8 data, from the
llbsgd study's run records -> results/llbsgd/{convergence,robustness,tables,curves}.json.
LLb-SGD is a labelled reconstruction (its equations are lost)."""
from pathlib import Path

from trainrepro.cli import analysis_args, guarded
from trainrepro.io import write_json
from trainrepro.papers import load_all
from trainrepro.papers.llbsgd.analysis import study_analysis
from trainrepro.papers.llbsgd.params import settings

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    args, params = analysis_args(__doc__)
    out_dir = Path(args.results) / "llbsgd"
    if not (out_dir / "index.json").exists():
        print("llbsgd analysis: no llbsgd study at this profile")
        return
    out = study_analysis(args.results, settings(params.raw, params.scale))
    for name, d in out.items():
        d["profile"], d["scale"] = params.profile_name, params.scale
        write_json(out_dir / f"{name}.json", d)
    sp = out["convergence"].get("speedup_vs_sgd") or {}
    print(f"llbsgd analysis: speedup_vs_sgd = {sp.get('value')} [{sp.get('lo')}, {sp.get('hi')}] "
          "(reconstruction)")


if __name__ == "__main__":
    guarded(main)
