"""Engine loader + training step vs a plain torchvision DataLoader loop, same model and data,
in one process. Prints images/s for both and the ratio; run on CPU here, on a GPU when present.

    python benchmarks/loader_vs_dataloader.py                      # digits (8x8), small_cnn
    python benchmarks/loader_vs_dataloader.py --shape cifar --model resnet18 --model-args '{"width": 16}'
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import PreparedDataset, normalisation
from trainrepro.models import build


def synthetic(shape: str, n: int) -> PreparedDataset:
    """Digits from scikit-learn, or random CIFAR-shaped uint8 images (speed only)."""
    rng = np.random.default_rng(0)
    if shape == "digits":
        from trainrepro.data.sources import digits_source

        raw = digits_source({}, "")
        x, y = raw.train_x, raw.train_y
    else:
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, n)
    idx = np.arange(len(y))
    manifest = {"name": shape, "num_classes": 10, "normalisation": normalisation(x, idx)}
    return PreparedDataset(shape, manifest, x, y, x[:256], y[:256], idx, idx[:256], idx[:0], y, {})


class PlainDataset(Dataset):
    """What a standard torchvision pipeline does: per-sample PIL-free tensor transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: bool, mean, std):
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y).long()
        ops = [transforms.ConvertImageDtype(torch.float32)]
        if augment:
            ops += [transforms.RandomCrop(x.shape[-1], padding=4), transforms.RandomHorizontalFlip()]
        ops += [transforms.Normalize(mean, std)]
        self.tf = transforms.Compose(ops)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.tf(self.x[i]), self.y[i]


def step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def images_per_s(batches, model, opt, epochs, device, amp) -> float:
    """Train on `batches()` (an iterable of (x, y) on the device per epoch): one warm-up
    epoch, then `epochs` timed ones; returns images per second."""
    for e in range(epochs + 1):
        if e == 1:
            sync(device)
            t, n = time.perf_counter(), 0
        for x, y in batches():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                step(model, opt, x, y)
            if e >= 1:
                n += len(y)
    sync(device)
    return n / (time.perf_counter() - t)


def bench_engine(ds, model, opt, bs, epochs, device, augment, amp):
    data = DeviceData(ds, device, augment="crop_flip" if augment else "none",
                      channels_last=device.type == "cuda")
    g = torch.Generator().manual_seed(0)
    return images_per_s(lambda: ((b.x, b.y) for b in data.train_batches(data.train_idx, bs, g)),
                        model, opt, epochs, device, amp)


def bench_dataloader(ds, model, opt, bs, epochs, device, augment, amp, workers):
    norm = ds.manifest["normalisation"]
    loader = DataLoader(PlainDataset(ds.x_pool, ds.y_pool, augment, norm["mean"], norm["std"]),
                        batch_size=bs, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format

    def batches():
        for x, y in loader:
            yield (x.to(device, non_blocking=True).contiguous(memory_format=fmt),
                   y.to(device, non_blocking=True))

    return images_per_s(batches, model, opt, epochs, device, amp)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=["digits", "cifar"], default="digits")
    ap.add_argument("--n", type=int, default=10000, help="images (cifar shape)")
    ap.add_argument("--model", default="small_cnn")
    ap.add_argument("--model-args", default='{"width": 16}')
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", help="append the result as one JSON line to this file")
    args = ap.parse_args()
    device = torch.device("cuda" if (args.device == "auto" and torch.cuda.is_available()) else
                          ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = synthetic(args.shape, args.n)
    augment = args.shape == "cifar"
    amp = device.type == "cuda"
    res = {}
    for name in ("dataloader", "engine", "dataloader", "engine"):  # interleaved, best of two
        torch.manual_seed(0)
        model = build(args.model, num_classes=10, in_channels=ds.x_pool.shape[1],
                      image_size=ds.x_pool.shape[2], **json.loads(args.model_args)).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        fn = bench_engine if name == "engine" else bench_dataloader
        extra = () if name == "engine" else (args.workers,)
        ips = fn(ds, model, opt, args.batch_size, args.epochs, device, augment, amp, *extra)
        res[name] = max(res.get(name, 0.0), ips)
    dev = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    out = {"device": dev, "shape": args.shape, "images": len(ds.y_pool), "model": args.model,
           "model_args": args.model_args, "batch_size": args.batch_size, "augment": augment,
           "dataloader_workers": args.workers, "engine_images_per_s": round(res["engine"], 1),
           "dataloader_images_per_s": round(res["dataloader"], 1),
           "ratio_engine_over_dataloader": round(res["engine"] / res["dataloader"], 2),
           "torch": torch.__version__}
    print(json.dumps(out))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
