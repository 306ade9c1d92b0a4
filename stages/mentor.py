"""Stage `mentor` (MentorNet): DD burn-in StudentNets, Forgetting dropout pilots, and the
MentorNet PD / DD fits (src/trainrepro/papers/mentornet/stage.py).

Reads: params.yaml (mentor, methods, profile), data/prepared/. Writes: results/mentors/
(mentor weights, assignments.json, forgetting_selection.json, surface data, summary.json) and
the pilot runs' records under results/mentors/."""
import argparse
import time

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.papers import load_all
from trainrepro.papers.mentornet.stage import run

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--prepared", default="data/prepared")
    ap.add_argument("--results", default="results")
    args = ap.parse_args()
    t0 = time.perf_counter()
    summary = run(load_params(args.params), args.prepared, args.results)
    for name, m in summary["mentors"].items():
        s = m["stats"]
        extra = (f" acc {s['accuracy']:.3f} v(clean) {s['mean_weight_clean']:.2f} "
                 f"v(noisy) {s['mean_weight_noisy']:.2f}" if "accuracy" in s else f" mse {s['mse']:.4f}")
        if "eq7_error" in m:
            extra += f" max |g_m - Eq. 7| {m['eq7_error']['max_abs_error']:.3f}"
        print(f"mentor {name}: n={s['n']}{extra}; Prop. 1 violations (fixed lambda) "
              f"{m['proposition1']['violations_fixed_lambda']:.3f}")
    print(f"forgetting dropout: { {c.split('-n')[1]: v['dropout'] for c, v in summary['forgetting'].items()} }")
    print(f"mentor stage: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    guarded(main)
