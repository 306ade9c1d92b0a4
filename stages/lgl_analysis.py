"""Part of stage `train_lgl`: entropy ranking (Table 2, claim L6) and compute accounting
(Sec. 4.3, claim L7) from the lgl study's run records.

Reads: params.yaml (lgl_analysis), data/prepared/, results/lgl/. Writes:
results/lgl/{entropy,compute}.json."""
import argparse
from pathlib import Path

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.io import write_json
from trainrepro.papers import load_all
from trainrepro.papers.lgl.analysis import compute_analysis, entropy_analysis
from trainrepro.papers.lgl.params import analysis_params

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    params = load_params(args.params)
    a = analysis_params(params.raw)
    ent = entropy_analysis(args.results, args.prepared, a["similar_pairs"], a["table2_rows"])
    comp = compute_analysis(args.results)
    for d in (ent, comp):
        d["profile"], d["scale"] = params.profile_name, params.scale
    out = Path(args.results) / "lgl"
    write_json(out / "entropy.json", ent)
    write_json(out / "compute.json", comp)
    r, e = ent["similar_class_rank"], comp["time_ratio_vs_formula_error"]
    num = lambda d: ", ".join(f"{float('nan') if d[k] is None else d[k]:.3f}" for k in ("value", "lo", "hi"))
    print(f"lgl analysis: similar_class_rank (value, lo, hi) = {num(r)} ({r['n_selections']} "
          f"selections, {r['n_probes']} probes); time_ratio_vs_formula_error = {num(e)}")


if __name__ == "__main__":
    guarded(main)
