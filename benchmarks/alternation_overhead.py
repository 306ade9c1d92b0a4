"""Alternation overhead: a B-alternation training step and an I-alternation masked step (stored
bit-packed masks, and the `snapshot` alternative) against the plain SGD step on the same model
(hard-threshold units, and ReLU), in one process, methods interleaved. Also the cost of one
mask-estimation pass relative to a plain SGD epoch, and the mask memory per example.
Targets (issue 11, item 9): B-alternation and I-alternation steps <= 1.15x the SGD step.

    python benchmarks/alternation_overhead.py [--device cpu|cuda] [--repeats 5] [--append]

Cases: the quick profile's network (allcnn_small_c width 16, digits 8x8, batch 64), a CIFAR-shaped
small network (allcnn_small_c width 32 on 32x32x3 random images, batch 128) and, on CUDA only,
ALL-CNN-C on 32x32x3 (batch 128). Prints a Markdown table; `--append` writes it as the
'## Alternation overhead' section of benchmarks/RESULTS.md (replacing the older one).
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
from pathlib import Path

import torch

import trainrepro.papers.alternation  # noqa: F401  (registers ht_relu and the methods)
from trainrepro.config import TRAIN_DEFAULTS
from trainrepro.data.loader import DeviceData
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS
from trainrepro.papers.alternation.overhead import clock_for, interleaved_epoch_times, paired_ratio

from mentornet_overhead import digits, synthetic  # same data helpers (benchmarks/ is on sys.path)
from results_md import replace_section

VARIANTS = {  # name: (method, params, activation)
    "sgd_relu": ("fullmodel", {}, "relu"),
    "sgd_ht": ("fullmodel", {}, "ht_relu"),
    "i_alt": ("i_alt", {"warmup_epochs": 0, "min_gap": 1000, "max_gap": 1000}, "ht_relu"),
    "i_alt_snapshot": ("i_alt", {"warmup_epochs": 0, "min_gap": 1000, "max_gap": 1000,
                                 "store": "snapshot"}, "ht_relu"),
    "b_alt": ("b_alt", {"warmup_epochs": 0}, "ht_relu"),
    "b_alt_gate": ("b_alt", {"warmup_epochs": 0, "b_apply": "gate"}, "ht_relu"),
}


def measure(name: str, ds, model: str, model_args: dict, batch: int, device: str, repeats: int) -> dict:
    data = DeviceData(ds, device, channels_last=device == "cuda")
    trainers = {}
    for key, (meth, params, act) in VARIANTS.items():
        cfg = {**TRAIN_DEFAULTS, "model": model, "model_args": {**model_args, "activation": act},
               "batch_size": batch, "epochs": 1000, "lr": 0.01, "optimizer_args": {"momentum": 0.9},
               "augment": "none", "seed": 0, "checkpoint": False}
        trainers[key] = Trainer(cfg, data, METHODS[meth], METHODS[meth].validate_params(params, "bench"))
    clock = clock_for(torch.device(device))
    # interleaved, order reversed every other repeat; I-alternation's first estimation happens at
    # its epoch start (untimed)
    times = interleaved_epoch_times(trainers, repeats, 1, clock)
    med = {k: statistics.median(v) for k, v in times.items()}
    ialt = trainers["i_alt"].method
    est = []
    for _ in range(max(3, repeats // 2)):
        s = clock()
        ialt.estimate(2)
        est.append(clock() - s)
    steps = math.ceil(len(ds.train_idx) / batch)
    return {"case": name, "device": device, "steps": steps,
            "ms": {k: 1e3 * v / steps for k, v in med.items()},
            "ratio_ht": {k: paired_ratio(times[k], times["sgd_ht"]) for k in times},
            "ratio_relu": {k: paired_ratio(times[k], times["sgd_relu"]) for k in times},
            "estimate_over_epoch": statistics.median(est) / med["sgd_ht"],
            "bytes_per_example": ialt.store.bytes_per_example, "bytes_total": ialt.store.total_bytes,
            "n_train": len(ds.train_idx)}


def cifar_allcnn_c_bytes() -> int:
    from trainrepro.models import build
    from trainrepro.papers.alternation.units import units_of

    net = build("allcnn_c", num_classes=10, in_channels=3, image_size=32, activation="ht_relu")
    return math.ceil(sum(u.numel for u in units_of(net)) / 8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    rows = [measure("allcnn_small_c w16, digits 8x8, batch 64", digits(), "allcnn_small_c", {"width": 16}, 64,
                    args.device, args.repeats),
            measure("allcnn_small_c w32, 32x32x3, batch 128", synthetic(20000 if cuda else 1024, 32, 3, 10),
                    "allcnn_small_c", {"width": 32}, 128, args.device, max(3, args.repeats // 2))]
    if cuda:
        rows.append(measure("allcnn_c, 32x32x3, batch 128", synthetic(20000, 32, 3, 10), "allcnn_c",
                            {"input_dropout": 0.0, "hidden_dropout": 0.0}, 128, args.device, 3))
    dev = torch.cuda.get_device_name() if cuda else f"{platform.processor() or 'cpu'}, {args.threads} thread(s)"
    keys = list(VARIANTS)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    clock = "synchronised wall time" if cuda else "process CPU time"
    lines = [f"Measured {datetime.date.today().isoformat()}; device: {dev}; torch {torch.__version__}; load average "
             f"(1/5/15 min) at the end: {load}. Per variant the median of {args.repeats} epochs ({clock}), variants "
             "interleaved in one process (order reversed every other repeat); ratio = mean of the per-repeat "
             "paired ratios [95% t-interval] against the SGD step with ReLU (against SGD with hard-threshold "
             "units, sgd_ht, after the slash).", "",
             "| case | steps/epoch | " + " | ".join(f"{k} ms/step" for k in keys) + " | "
             + " | ".join(f"{k} ratio" for k in keys[1:]) + " | estimation pass / epoch | mask bytes/example | total |",
             "|" + "---|" * (2 + len(keys) + len(keys) - 1 + 3)]

    def iv(r: dict) -> str:
        return f"{r['value']:.3f} [{r['lo']:.2f}, {r['hi']:.2f}]"

    for r in rows:
        lines.append(f"| {r['case']} | {r['steps']} | " + " | ".join(f"{r['ms'][k]:.3f}" for k in keys) + " | "
                     + " | ".join(f"{iv(r['ratio_relu'][k])} / {r['ratio_ht'][k]['value']:.3f}" for k in keys[1:])
                     + f" | {r['estimate_over_epoch']:.2f} | {r['bytes_per_example']:,} | "
                     f"{r['bytes_total'] / 2**20:.2f} MiB ({r['n_train']:,} ex.) |")
    b = cifar_allcnn_c_bytes()
    lines += ["", f"ALL-CNN-C on CIFAR-10 (paper scale): {b:,} mask bytes per example, "
                  f"{b * 50000 / 2**30:.2f} GiB for 50,000 training images (bit-packed, on the device)."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        replace_section("## Alternation overhead", "`python benchmarks/alternation_overhead.py --append`\n\n" + text,
                        Path(__file__).parent / "RESULTS.md")


if __name__ == "__main__":
    main()
