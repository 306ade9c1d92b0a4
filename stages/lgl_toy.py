"""Stage `lgl_toy` (LGL Sec. 5.1, Fig. 2 a-i): baseline, SPL, SPL_INV and LGL on three 2-D
Gaussians. Reads: params.yaml (lgl_toy, runtime). Writes: results/lgl_toy/{curves.csv,
points.csv, toy.json}. Progress (seeds done/total) on stderr."""
import argparse

from trainrepro.cli import guarded
from trainrepro.config import load_params
from trainrepro.papers import load_all
from trainrepro.papers.lgl.params import toy_params
from trainrepro.papers.lgl.toy import run_toy

load_all()  # every paper registers its methods, params sections and report writers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="results/lgl_toy")
    args = ap.parse_args()
    params = load_params(args.params)
    rt = params.runtime
    workers = 1 if rt["device"] == "cuda" else int(rt["workers"])   # the toy always runs on CPU
    s = run_toy(toy_params(params.raw, params.scale), args.out, threads=int(rt["threads"]), workers=workers)
    t = {k: s[k] for k in ("spl_inv_faster_than_spl", "lgl_faster_than_baseline")}
    print(f"lgl_toy: {len(s['runs'])} runs; " + ", ".join(
        f"{k} = {v['wins']}/{v['n']} [{v['lo']:.2f}, {v['hi']:.2f}]" for k, v in t.items()))


if __name__ == "__main__":
    guarded(main)
