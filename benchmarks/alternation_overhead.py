"""Alternation overhead: a B-alternation training step and an I-alternation masked step (stored
bit-packed masks, and the `snapshot` alternative) against the plain SGD step on the same model
(hard-threshold units, and ReLU), in one process, methods interleaved. Also the cost of one
mask-estimation pass relative to a plain SGD epoch, and the mask memory per example.
Targets (issue 11, item 9): B-alternation and I-alternation steps <= 1.15x the SGD step.

    python benchmarks/alternation_overhead.py [--device cpu|cuda] [--repeats 5] [--append]

Cases: the quick profile's network (allcnn_small_c width 16, digits 8x8, batch 64), a CIFAR-shaped
small network (allcnn_small_c width 32 on 32x32x3 random images, batch 128) and, on CUDA only,
ALL-CNN-C on 32x32x3 (batch 128). Prints a Markdown table; `--append` adds it under
'## Alternation overhead' in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import torch

import trainrepro.papers.alternation  # noqa: F401  (registers ht_relu and the methods)
from trainrepro.config import TRAIN_DEFAULTS
from trainrepro.data.loader import DeviceData
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS

from mentornet_overhead import digits, synthetic  # same data helpers (benchmarks/ is on sys.path)

VARIANTS = {  # name: (method, params, activation)
    "sgd_relu": ("fullmodel", {}, "relu"),
    "sgd_ht": ("fullmodel", {}, "ht_relu"),
    "i_alt": ("i_alt", {"warmup_epochs": 0, "min_gap": 1000, "max_gap": 1000}, "ht_relu"),
    "i_alt_snapshot": ("i_alt", {"warmup_epochs": 0, "min_gap": 1000, "max_gap": 1000,
                                 "store": "snapshot"}, "ht_relu"),
    "b_alt": ("b_alt", {"warmup_epochs": 0}, "ht_relu"),
    "b_alt_gate": ("b_alt", {"warmup_epochs": 0, "b_apply": "gate"}, "ht_relu"),
}


def sync(t: Trainer) -> None:
    if t.cuda:
        torch.cuda.synchronize()


def timed(fn, t: Trainer) -> float:
    sync(t)
    s = time.perf_counter()
    fn()
    sync(t)
    return time.perf_counter() - s


def measure(name: str, ds, model: str, model_args: dict, batch: int, device: str, repeats: int) -> dict:
    data = DeviceData(ds, device, channels_last=device == "cuda")
    trainers = {}
    for key, (meth, params, act) in VARIANTS.items():
        cfg = {**TRAIN_DEFAULTS, "model": model, "model_args": {**model_args, "activation": act},
               "batch_size": batch, "epochs": 1000, "lr": 0.01, "optimizer_args": {"momentum": 0.9},
               "augment": "none", "seed": 0, "checkpoint": False}
        t = Trainer(cfg, data, METHODS[meth], METHODS[meth].validate_params(params, "bench"))
        t.method.on_epoch_start(1)  # I-alternation: the first mask estimation happens here
        t.train_epoch(1)            # warm-up
        trainers[key] = t
    times = {k: [] for k in trainers}
    for _ in range(repeats):  # interleaved so that load drifts hit every variant alike
        for k, t in trainers.items():
            times[k].append(timed(lambda t=t: t.train_epoch(2), t))
    med = {k: statistics.median(v) for k, v in times.items()}
    ialt = trainers["i_alt"].method
    est = [timed(lambda: ialt.estimate(2), trainers["i_alt"]) for _ in range(max(3, repeats // 2))]
    steps = math.ceil(len(ds.train_idx) / batch)
    return {"case": name, "device": device, "steps": steps,
            "ms": {k: 1e3 * v / steps for k, v in med.items()},
            "ratio_ht": {k: v / med["sgd_ht"] for k, v in med.items()},
            "ratio_relu": {k: v / med["sgd_relu"] for k, v in med.items()},
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
    lines = [f"Device: {dev}; torch {torch.__version__}; median of {args.repeats} epochs, variants interleaved; "
             f"ratios against the SGD step with hard-threshold units (sgd_ht; against ReLU in brackets).", "",
             "| case | steps/epoch | " + " | ".join(f"{k} ms/step" for k in keys) + " | "
             + " | ".join(f"{k} ratio" for k in keys[2:]) + " | estimation pass / epoch | mask bytes/example | total |",
             "|" + "---|" * (2 + len(keys) + len(keys) - 2 + 3)]
    for r in rows:
        lines.append(f"| {r['case']} | {r['steps']} | " + " | ".join(f"{r['ms'][k]:.3f}" for k in keys) + " | "
                     + " | ".join(f"{r['ratio_ht'][k]:.3f} ({r['ratio_relu'][k]:.3f})" for k in keys[2:])
                     + f" | {r['estimate_over_epoch']:.2f} | {r['bytes_per_example']:,} | "
                     f"{r['bytes_total'] / 2**20:.2f} MiB ({r['n_train']:,} ex.) |")
    b = cifar_allcnn_c_bytes()
    lines += ["", f"ALL-CNN-C on CIFAR-10 (paper scale): {b:,} mask bytes per example, "
                  f"{b * 50000 / 2**30:.2f} GiB for 50,000 training images (bit-packed, on the device)."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        path = Path(__file__).parent / "RESULTS.md"
        path.write_text(path.read_text().rstrip() + "\n\n## Alternation overhead\n\n"
                        "`python benchmarks/alternation_overhead.py --append`\n\n" + text + "\n")


if __name__ == "__main__":
    main()
