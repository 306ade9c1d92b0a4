"""Training throughput of the papers' models: images/s and model FLOP utilisation (MFU).

For each model at the papers' batch size and at a larger one, three paths on the same synthetic
CIFAR-shaped data (random uint8 32x32x3; speed only):

  engine           the engine's own training epoch (`Trainer.train_epoch`: data resident on the
                   device, on-device crop + flip, bf16 autocast and channels_last on CUDA)
  engine+compile   the same with torch.compile (CUDA only; `--compile`)
  plain            a plain torchvision DataLoader loop: per-sample transforms, fp32, contiguous

and `--packed K`: K small runs side by side on one device (the project's pool with K slots on
the same device, `parallel.run_jobs`) against one run, total images/s.

FLOPs per image are counted with torch.utils.flop_counter (forward + backward of one batch);
MFU = FLOPs/s / peak bf16 dense FLOP/s of the device (table below, or `--peak-tflops`). On CPU
there is no peak in the table: MFU is printed only with --peak-tflops.

    python benchmarks/gpu_throughput.py                              # GPU: every model, batch 128 and 512
    python benchmarks/gpu_throughput.py --compile --packed 4         # + torch.compile, 4 packed runs
    python benchmarks/gpu_throughput.py --device cpu --tiny          # CPU smoke: narrow models, few steps
    python benchmarks/gpu_throughput.py --matrix                     # + the paper-scale matrix estimate
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark's helpers
from loader_vs_dataloader import PlainDataset, images_per_s, sync  # noqa: E402

from trainrepro.config import TRAIN_DEFAULTS, expand_study, load_params  # noqa: E402
from trainrepro.data.loader import DeviceData  # noqa: E402
from trainrepro.data.prepared import PreparedDataset, normalisation  # noqa: E402
from trainrepro.engine import Trainer  # noqa: E402
from trainrepro.methods import METHODS  # noqa: E402
from trainrepro.models import build  # noqa: E402
from trainrepro.parallel import run_jobs  # noqa: E402
from trainrepro.papers import load_all  # noqa: E402

# model -> (paper batch size, where it comes from, model_args for --tiny on CPU)
PAPER_MODELS: dict[str, tuple[int, str, dict[str, Any]]] = {
    "resnet18": (128, "params paper profile (foundation)", {"width": 8}),
    "resnet34": (128, "params default recipe (batch 128)", {"width": 8}),
    "vgg16": (128, "LGL Sec. 5.2", {"width_divisor": 8}),
    "allcnn_c": (128, "not stated in our notes of the alternation paper: 128 assumed", {}),
    "wide_resnet_mentornet": (128, "MentorNet official code", {"blocks_per_stage": 1, "widths": [16, 32, 64]}),
    "cifarnet": (128, "MentorNet official code", {}),
    "nin": (128, "not stated in our notes of the alternation paper: 128 assumed", {}),
}
# Peak dense bf16 tensor FLOP/s (vendor data sheets, no sparsity), by device-name substring;
# the first match wins, so the more specific names come first.
PEAK_BF16 = [("H100 PCIe", 756e12), ("H100", 989.4e12), ("H200", 989.4e12), ("GH200", 989.4e12),
             ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12),
             ("A10G", 70e12), ("A10", 125e12), ("RTX 4090", 165e12), ("V100", 125e12)]
H100_BF16 = 989.4e12  # the bound's default peak (H100 SXM) when the device has none in the table
N_TRAIN_PAPER = 45_000  # CIFAR train split after the 10% validation hold-out (datasets.cifar10)


def peak_for_name(name: str) -> float | None:
    """Peak bf16 dense FLOP/s of a CUDA device by its name (None: not in the table)."""
    return next((peak for key, peak in PEAK_BF16 if key in name), None)


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return peak_for_name(torch.cuda.get_device_name(device)) if device.type == "cuda" else None


def synthetic_cifar(n: int) -> PreparedDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    idx = np.arange(n)
    manifest = {"name": "cifar-shaped", "num_classes": 10, "normalisation": normalisation(x, idx)}
    return PreparedDataset("cifar-shaped", manifest, x, y, x[:64], y[:64], idx, idx[:64], idx[:0], y, {})


def flops_per_image(model_name: str, model_args: dict, bs: int, device: torch.device) -> float:
    """Forward + backward FLOPs of one training batch, per image (torch.utils.flop_counter)."""
    torch.manual_seed(0)
    model = build(model_name, num_classes=10, in_channels=3, image_size=32, **model_args).to(device)
    x = torch.randn(bs, 3, 32, 32, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(bs, dtype=torch.long, device=device)).backward()
    return counter.get_total_flops() / bs


def engine_ips(model_name: str, model_args: dict, bs: int, steps: int, epochs: int,
               device: torch.device, compile_: bool) -> float:
    """Images/s of the engine's training epochs (`Trainer.train_epoch`), one warm-up epoch
    (compilation, cuDNN autotuning) then `epochs` timed epochs of `steps` batches each."""
    ds = synthetic_cifar(bs * steps)
    data = DeviceData(ds, device, augment="crop_flip", channels_last=device.type == "cuda")
    cfg = {**TRAIN_DEFAULTS, "model": model_name, "model_args": model_args, "batch_size": bs,
           "epochs": epochs + 1, "lr": 0.01, "optimizer_args": {"momentum": 0.9},
           "augment": "crop_flip", "compile": compile_, "checkpoint": False, "seed": 0,
           "name": "bench", "config_hash": "bench"}
    trainer = Trainer(cfg, data, METHODS["fullmodel"], {})
    trainer.train_epoch(0)
    sync(device)
    t = time.perf_counter()
    for e in range(1, epochs + 1):
        trainer.train_epoch(e)
    sync(device)
    return epochs * len(data.train_idx) / (time.perf_counter() - t)


def plain_ips(model_name: str, model_args: dict, bs: int, steps: int, epochs: int,
              device: torch.device, workers: int) -> float:
    """Images/s of a plain DataLoader loop (per-sample torchvision transforms, fp32)."""
    ds = synthetic_cifar(bs * steps)
    norm = ds.manifest["normalisation"]
    loader = DataLoader(PlainDataset(ds.x_pool, ds.y_pool, True, norm["mean"], norm["std"]),
                        batch_size=bs, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = build(model_name, num_classes=10, in_channels=3, image_size=32, **model_args).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def batches():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return images_per_s(batches, model, opt, epochs, device, amp=False)


def packed_job(job: dict[str, Any]) -> float:
    """One of the packed runs (a pool worker pinned to the device by its slot)."""
    torch.set_num_threads(job["threads"])
    return engine_ips(job["model"], job["model_args"], job["bs"], job["steps"], job["epochs"],
                      torch.device(job["device"]), False)


def packed_ips(k: int, job: dict[str, Any]) -> float:
    """Total images/s of k runs side by side on one device (each its own process)."""
    rates = run_jobs(packed_job, [job] * k, threads=job["threads"], progress=False,
                     slots=[job["device"]] * k)
    return float(sum(rates))


def matrix(params_path: str) -> dict[str, dict[str, int]]:
    """Runs and nominal epochs per model of the paper-scale matrix (every study of the
    `paper` profile). LGL's step multiplier (planned_epochs) is not applied: see RESULTS.md."""
    params = load_params(params_path)
    params.raw["profile"] = "paper"
    out: dict[str, dict[str, int]] = {}
    for study in params.studies():
        for r in expand_study(params, study):
            m = out.setdefault(r.model, {"runs": 0, "epochs": 0})
            m["runs"] += 1
            m["epochs"] += int(r.train["epochs"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--models", nargs="+", default=list(PAPER_MODELS))
    ap.add_argument("--large-batch", type=int, default=512, help="the larger batch size")
    ap.add_argument("--batch-sizes", type=int, nargs="+", help="instead of paper + large")
    ap.add_argument("--steps", type=int, default=40, help="batches per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of the plain loop")
    ap.add_argument("--compile", action="store_true", help="also engine + torch.compile (CUDA)")
    ap.add_argument("--packed", type=int, default=0, help="K packed small runs vs one run")
    ap.add_argument("--packed-model", default="cifarnet")
    ap.add_argument("--packed-batch", type=int, help="batch of the packed runs (default: the paper's)")
    ap.add_argument("--peak-tflops", type=float, help="peak bf16 dense TFLOP/s (overrides the table)")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke: narrow models (PAPER_MODELS tiny args)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--matrix", action="store_true", help="print the paper-scale matrix estimate")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--json", help="append every result as a JSON line to this file")
    args = ap.parse_args()
    load_all()
    device = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    dev_name = (torch.cuda.get_device_name(device) if cuda else
                f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    peak = peak_flops(device, args.peak_tflops)
    print(f"# {dev_name}; torch {torch.__version__}; peak bf16 {peak / 1e12 if peak else 'n/a'} TFLOP/s; "
          f"{'tiny models' if args.tiny else 'full models'}; {args.steps} steps x {args.epochs} timed epochs")
    print("| model | batch | path | images/s | GFLOP/image | MFU | vs plain |")
    print("|---|---|---|---|---|---|---|")
    results = []
    best: dict[str, float] = {}
    for name in args.models:
        paper_bs, _, tiny_args = PAPER_MODELS[name]
        margs = tiny_args if args.tiny else {}
        for bs in args.batch_sizes or [paper_bs, args.large_batch]:
            fpi = flops_per_image(name, margs, min(bs, 32), device)
            paths = {"plain": lambda: plain_ips(name, margs, bs, args.steps, args.epochs, device, args.workers),
                     "engine": lambda: engine_ips(name, margs, bs, args.steps, args.epochs, device, False)}
            if args.compile and cuda:
                paths["engine+compile"] = lambda: engine_ips(name, margs, bs, args.steps, args.epochs, device, True)
            rates = {p: fn() for p, fn in paths.items()}
            for p, ips in rates.items():
                mfu = ips * fpi / peak if peak else None
                row = {"device": dev_name, "model": name, "model_args": margs, "batch": bs, "path": p,
                       "images_per_s": round(ips, 1), "gflop_per_image": round(fpi / 1e9, 4),
                       "mfu": None if mfu is None else round(mfu, 4),
                       "vs_plain": round(ips / rates["plain"], 2), "torch": torch.__version__}
                results.append(row)
                if p != "plain" and bs == paper_bs:
                    best[name] = max(best.get(name, 0.0), ips)
                print(f"| {name} | {bs} | {p} | {ips:,.0f} | {fpi / 1e9:.3f} | "
                      f"{'n/a' if mfu is None else f'{100 * mfu:.1f}%'} | {ips / rates['plain']:.2f}x |",
                      flush=True)
    if args.packed:
        margs = PAPER_MODELS[args.packed_model][2] if args.tiny else {}
        job = {"model": args.packed_model, "model_args": margs,
               "bs": args.packed_batch or PAPER_MODELS[args.packed_model][0],
               "steps": args.steps, "epochs": args.epochs, "device": str(device),
               "threads": 1 if not cuda else torch.get_num_threads()}
        one, many = packed_ips(1, job), packed_ips(args.packed, job)
        row = {"device": dev_name, "model": args.packed_model, "packed": args.packed,
               "one_run_images_per_s": round(one, 1), "packed_images_per_s": round(many, 1),
               "ratio": round(many / one, 2)}
        results.append(row)
        print(f"\npacked: {args.packed} x {args.packed_model} (batch {job['bs']}): {many:,.0f} images/s "
              f"in total vs one run {one:,.0f} images/s = {many / one:.2f}x")
    if args.matrix:
        counts = matrix(args.params)
        bound_peak = peak or H100_BF16
        print(f"\npaper-scale matrix (profile `paper`, {N_TRAIN_PAPER:,} training images per epoch): "
              f"runs, nominal epochs, measured GPU-hours (training only), and the compute bound at "
              f"100% MFU of {bound_peak / 1e12:.0f} TFLOP/s (full-size models' counted FLOPs)")
        total = bound_total = 0.0
        for model, c in sorted(counts.items()):
            ips = best.get(model) if (cuda and not args.tiny) else None
            hours = c["epochs"] * N_TRAIN_PAPER / ips / 3600 if ips else None
            bound = c["epochs"] * N_TRAIN_PAPER * flops_per_image(model, {}, 2, torch.device("cpu")) / bound_peak / 3600
            total, bound_total = total + (hours or 0.0), bound_total + bound
            print(f"  {model}: {c['runs']} runs, {c['epochs']} epochs, "
                  f"{'not measured' if hours is None else f'{hours:.2f} GPU-h'}; bound {bound:.2f} GPU-h")
        print(f"  total: {f'{total:.2f} GPU-h measured on {dev_name}' if total else 'not measured'}; "
              f"compute bound {bound_total:.2f} GPU-h")
    if args.json:
        with open(args.json, "a") as f:
            for row in results:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
