"""The params.yaml of the GPU checks (benchmarks/alternation_gpu_check.sh, llbsgd_gpu_check.sh):
profile cifar10_jpeg reduced to its alternation and llbsgd studies, each cut to a few epochs, so
that both scripts write the same params and their records (one results tree) export together as
one reference folder (reference_runs/cifar10_jpeg/, provenance = these params).

    python benchmarks/gpu_check_params.py OUT.yaml [--alt-epochs 8] [--llb-epochs 4]
                                          [--runs-per-gpu 3] [--smoke]

--smoke: a CPU test of the scripts' plumbing (digits and the quick profile's networks, 1 epoch);
its records are not reference runs and the scripts do not export them.
"""
from __future__ import annotations

import argparse

import yaml

SMOKE_MODELS = {"alternation": "allcnn_small_c", "llbsgd": "small_cnn"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--alt-epochs", type=int, default=8)
    ap.add_argument("--llb-epochs", type=int, default=4)
    ap.add_argument("--runs-per-gpu", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    with open("params.yaml") as f:
        p = yaml.safe_load(f)
    p["profile"] = "cifar10_jpeg"
    p.setdefault("runtime", {})["runs_per_gpu"] = args.runs_per_gpu
    prof = p["profiles"]["cifar10_jpeg"]
    epochs = {"alternation": args.alt_epochs, "llbsgd": args.llb_epochs}
    prof["studies"] = {s: prof["studies"][s] for s in epochs}
    for study, blocks in prof["studies"].items():
        for block in blocks:
            block["train"]["epochs"] = 1 if args.smoke else epochs[study]
            if args.smoke:
                block["datasets"], block["models"] = ["digits"], [SMOKE_MODELS[study]]
    prof["label"] += (" (SMOKE: digits, 1 epoch; not a reference run)" if args.smoke else
                      f" (reduced: alternation {args.alt_epochs} epochs, LLb-SGD {args.llb_epochs} epochs; "
                      "benchmarks/*_gpu_check.sh)")
    with open(args.out, "w") as f:
        yaml.safe_dump(p, f, sort_keys=False)


if __name__ == "__main__":
    main()
