"""A run's data, in one of two placements behind one interface (`RunData`: train_batches,
eval_batches, subset_batches, inputs, labels and index tensors on the device):

- `DeviceData` (airbench style): the whole split lives on the device as one tensor, batches are
  index slices, no worker processes. Every dataset stored in memory (digits, CIFAR, ...).
- `HostData`: the inputs stay in the host memmap of a memmap-stored dataset (ImageNet: ~193 GB
  on disk); each batch's rows are gathered (in sorted order, for locality) into a pinned tensor
  by a background thread one batch ahead, and sent to the device non-blocking.

Labels and indices are device tensors and augmentation / normalisation are tensor ops on the
device in both, drawing the same random numbers: the same prepared arrays give bit-identical
batches either way. `make_data` picks the placement from the dataset's storage."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..distributed import shard
from .prepared import PreparedDataset


@dataclass
class Batch:
    """One mini-batch: inputs, the labels the learner sees, and dataset indices (into the pool)."""

    x: torch.Tensor
    y: torch.Tensor
    idx: torch.Tensor


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator | None,
                     flip: bool = True, keep: slice = slice(None)) -> torch.Tensor:
    """Zero-padded random crop (same size) and horizontal flip of x[keep], vectorised over the
    batch. The random numbers are drawn for the whole batch x, so a DDP rank's shard (`keep`) is
    augmented exactly as the same images are in one process."""
    n = x.shape[0]
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)[:, keep].to(x.device)
    mask = (torch.rand(n, generator=generator) < 0.5)[keep].to(x.device) if flip else None
    x = x[keep]
    n, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    rows = (shifts[0][:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (shifts[1][:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = xp[torch.arange(n, device=dev)[:, None, None, None],
             torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    if mask is not None:
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out


class RunData:
    """A prepared dataset with normalisation and augmentation; labels and indices on the device.
    Subclasses place the inputs (`_place`) and may gather batches their own way (`_batches`)."""

    def __init__(self, ds: PreparedDataset, device: torch.device | str, augment: str = "none",
                 channels_last: bool = False, val_labels: str = "noisy"):
        self.ds = ds
        self.device = torch.device(device)
        self.augment = augment
        self.channels_last = channels_last and ds.is_image
        self.x_pool = self._place(ds.x_pool)
        self.x_test = self._place(ds.x_test)
        self.noisy = torch.from_numpy(ds.noisy_pool).long().to(self.device)
        self.true = torch.from_numpy(ds.y_pool).long().to(self.device)
        self.y_test = torch.from_numpy(ds.y_test).long().to(self.device)
        self.train_idx = torch.from_numpy(ds.train_idx).long().to(self.device)
        self.val_idx = torch.from_numpy(ds.val_idx).long().to(self.device)
        self.clean_idx = torch.from_numpy(ds.clean_idx).long().to(self.device)
        self.val_y = (self.noisy if val_labels == "noisy" else self.true)
        norm = ds.manifest["normalisation"]
        shape = (1, -1, 1, 1) if ds.is_image else (1, -1)
        self.mean = torch.tensor(norm["mean"], dtype=torch.float32, device=self.device).view(shape)
        self.std = torch.tensor(norm["std"], dtype=torch.float32, device=self.device).view(shape)

    def _place(self, x: np.ndarray):
        """A split's inputs as this placement holds them; `held[idx]` (idx a device index tensor)
        is then the device tensor of those rows."""
        raise NotImplementedError

    def _batches(self, x_all, idx_all: torch.Tensor, batch_size: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(raw inputs on the device, indices) of consecutive batch_size slices of idx_all."""
        for s in range(0, len(idx_all), batch_size):
            idx = idx_all[s:s + batch_size]
            yield x_all[idx], idx

    @property
    def num_classes(self) -> int:
        return self.ds.num_classes

    def inputs(self, raw: torch.Tensor, train: bool, generator: torch.Generator | None,
               keep: slice = slice(None)) -> torch.Tensor:
        """Augment (train only) and normalise raw[keep] of a raw uint8/float batch (random
        numbers are drawn for the whole batch)."""
        x = raw.float()
        if self.ds.is_image:
            x = x / 255.0
            if train and self.augment == "crop_flip":
                x, keep = random_crop_flip(x, 4, generator, keep=keep), slice(None)
        x = (x[keep] - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_batches(self, indices: torch.Tensor, batch_size: int, generator: torch.Generator,
                      rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Shuffled training batches over `indices` (pool indices), noisy labels. With world > 1
        (DDP) each batch is rank `rank`'s contiguous shard of the global batch of `batch_size`:
        every rank draws the same order and augmentation, so the shards partition it."""
        order = torch.randperm(len(indices), generator=generator).to(indices.device)
        shuffled = indices[order]
        for raw, idx in self._batches(self.x_pool, shuffled, batch_size):
            keep = shard(len(idx), rank, world)
            yield Batch(self.inputs(raw, True, generator, keep), self.noisy[idx[keep]], idx[keep])

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        """Deterministic un-augmented batches of 'train' (noisy labels), 'val' or 'test'."""
        if split == "test":
            x_all, y_all = self.x_test, self.y_test
            idx_all = torch.arange(len(self.y_test), device=self.device)
        else:
            x_all = self.x_pool
            y_all = self.noisy if split == "train" else self.val_y
            idx_all = self.train_idx if split == "train" else self.val_idx
        for raw, idx in self._batches(x_all, idx_all, batch_size):
            yield Batch(self.inputs(raw, False, None), y_all[idx], idx)

    def subset_batches(self, indices: torch.Tensor, batch_size: int) -> Iterator[Batch]:
        """Un-augmented batches of arbitrary pool indices (noisy labels), e.g. for scoring."""
        for raw, idx in self._batches(self.x_pool, indices, batch_size):
            yield Batch(self.inputs(raw, False, None), self.noisy[idx], idx)


class DeviceData(RunData):
    """The inputs moved to the device once, as one tensor per split."""

    def _place(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(self.device)


class HostRows:
    """A split's inputs left in host memory (a memmap), indexed like a device tensor:
    `rows[idx]` gathers those rows and sends them to the device. Exposes shape and len."""

    def __init__(self, x: np.ndarray, device: torch.device):
        self.x, self.device = x, device
        self.shape = x.shape
        self.dtype = torch.from_numpy(np.empty(0, x.dtype)).dtype
        self.pin = device.type == "cuda" and torch.cuda.is_available()

    def __len__(self) -> int:
        return len(self.x)

    def gather(self, idx: np.ndarray) -> torch.Tensor:
        """Rows idx (in idx's order) as a host tensor, pinned for CUDA: read in sorted order
        (sequential on disk where idx allows), then put back in the batch's order."""
        order = np.argsort(idx, kind="stable")
        out = torch.empty((len(idx), *self.shape[1:]), dtype=self.dtype, pin_memory=self.pin)
        out.numpy()[order] = self.x[idx[order]]
        return out

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return self.gather(idx.cpu().numpy()).to(self.device, non_blocking=True)


class HostData(RunData):
    """The inputs streamed from the host memmap batch by batch (for datasets larger than the
    device's memory): a background thread gathers the next batch while this one trains."""

    def _place(self, x: np.ndarray) -> HostRows:
        return HostRows(x, self.device)

    def _batches(self, x_all: HostRows, idx_all: torch.Tensor, batch_size: int
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        host = idx_all.cpu().numpy()  # one device sync per pass, not per batch
        starts = range(0, len(host), batch_size)
        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = pool.submit(x_all.gather, host[:batch_size]) if len(host) else None
            for s in starts:
                rows = ahead.result()
                if s + batch_size < len(host):
                    ahead = pool.submit(x_all.gather, host[s + batch_size:s + 2 * batch_size])
                yield rows.to(self.device, non_blocking=True), idx_all[s:s + batch_size]


def make_data(ds: PreparedDataset, device: torch.device | str, **kw) -> RunData:
    """The run's data in the placement its storage calls for: a memmap-stored dataset streams
    from the host (HostData), every other one moves to the device (DeviceData)."""
    return (HostData if ds.storage == "memmap" else DeviceData)(ds, device, **kw)
