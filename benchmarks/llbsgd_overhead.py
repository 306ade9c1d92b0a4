"""LLb-SGD / Path-SGD / ESGD step time against the SGD step on the same model, in one process.

    PYTHONPATH=src python benchmarks/llbsgd_overhead.py [--device cpu|cuda] [--repeats 7] [--append]

Each optimizer trains the same model (same init, same data) through the engine's epoch loop
(`Trainer.train_epoch`: closure = forward + backward, then `optimizer.step`); one warm-up epoch,
then `repeats` timed epochs, the optimizers interleaved epoch by epoch so that machine-load drift
hits all alike; the fastest epoch / steps = ms per step (the minimum: on a shared machine other
processes only ever add time). Target: LLb-SGD <= 1.10x SGD
(issue 10, item 7). LLb-SGD is a labelled reconstruction (papers/llbsgd/optimizer.py).
Cases: the quick profile's small CNN on 8x8 inputs (batch 64) and a CIFAR-shaped ResNet-18
(width 16, 32x32x3, batch 128); on CUDA the second case is ResNet-34 at full width.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

import trainrepro.papers.llbsgd  # noqa: F401  (registers llbsgd)
from results_md import replace_section  # benchmarks/results_md.py (the script folder is on sys.path)
from trainrepro.config import TRAIN_DEFAULTS
from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import PreparedDataset
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS

OPTIMIZERS = {  # name: (optimizer, args); SGD with momentum 0.9 is the reference
    "sgd": ("sgd", {"momentum": 0.9}),
    "llbsgd": ("llbsgd", {"xi": 1.0, "momentum": 0.9}),
    "pathsgd": ("pathsgd", {"momentum": 0.9}),
    "esgd": ("esgd", {}),
}


def random_images(n: int, side: int, channels: int, k: int = 10) -> PreparedDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, channels, side, side), dtype=np.uint8)
    y = rng.integers(0, k, n).astype(np.int64)
    idx = np.arange(n)
    return PreparedDataset("random", {"num_classes": k, "normalisation": {"mean": [0.5] * channels,
                                                                          "std": [0.25] * channels}},
                           x, y, x[:64], y[:64], idx, idx[:64], idx[:0], y, {"rate": 0.0})


def timed_epoch(t: Trainer, epoch: int) -> float:
    if t.cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    t.train_epoch(epoch)
    if t.cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(case: str, ds: PreparedDataset, model: str, model_args: dict, batch: int, device: str,
            repeats: int) -> dict:
    data = DeviceData(ds, device, channels_last=device == "cuda")
    trainers = {}
    for key, (name, args) in OPTIMIZERS.items():
        cfg = {**TRAIN_DEFAULTS, "model": model, "model_args": model_args, "batch_size": batch,
               "optimizer": name, "optimizer_args": args, "lr": 0.01, "augment": "none", "seed": 0,
               "checkpoint": False, "epochs": 100}
        trainers[key] = Trainer(cfg, data, METHODS["fullmodel"], {})
        trainers[key].train_epoch(0)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in trainers}
    for e in range(repeats):
        for k, t in trainers.items():
            times[k].append(timed_epoch(t, e + 1))
    steps = int(np.ceil(len(ds.train_idx) / batch))
    ms = {k: 1e3 * min(v) / steps for k, v in times.items()}
    return {"case": case, "device": device, "steps": steps, "ms": ms,
            "ratio": {k: ms[k] / ms["sgd"] for k in ms}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    if not cuda:
        torch.set_num_threads(args.threads)
    rows = [measure("small_cnn w16, 8x8x1, batch 64", random_images(1152, 8, 1), "small_cnn",
                    {"width": 16}, 64, args.device, args.repeats),
            measure("resnet34, 32x32x3, batch 128" if cuda else "resnet18 w16, 32x32x3, batch 128",
                    random_images(10240 if cuda else 512, 32, 3), "resnet34" if cuda else "resnet18",
                    {} if cuda else {"width": 16}, 128, args.device, max(3, args.repeats // 3))]
    dev = torch.cuda.get_device_name() if cuda else f"{platform.processor() or 'cpu'}, {args.threads} thread(s)"
    lines = [f"Device: {dev}; torch {torch.__version__}; fastest of the timed epochs, optimizers interleaved.", "",
             "| case | device | steps/epoch | SGD ms/step | LLb-SGD ms/step (ratio) | Path-SGD ms/step (ratio) | ESGD ms/step (ratio) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r['ms'][k]:.3f} ({r['ratio'][k]:.3f}x)" for k in ("llbsgd", "pathsgd", "esgd")]
        lines.append(f"| {r['case']} | {r['device']} | {r['steps']} | {r['ms']['sgd']:.3f} | " + " | ".join(cells) + " |")
    worst = max(r["ratio"]["llbsgd"] for r in rows)
    lines += ["", f"LLb-SGD (reconstruction) worst ratio {worst:.3f}x: "
              f"{'meets' if worst <= 1.10 else 'misses'} the 1.10x target."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        append_results(text)


def append_results(text: str, path: Path = Path("benchmarks/RESULTS.md")) -> None:
    """Replace (or add) the '## LLb-SGD overhead' section, leaving other sections alone."""
    replace_section("## LLb-SGD overhead", ("`PYTHONPATH=src python benchmarks/llbsgd_overhead.py --append` (optimizer step "
            "time against SGD (momentum 0.9) on the same model; target LLb-SGD <= 1.10x; LLb-SGD is a "
            "labelled reconstruction).\n\n" + text), path)


if __name__ == "__main__":
    main()
