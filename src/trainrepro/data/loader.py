"""Device-resident data (airbench style): the whole split lives on the device as one tensor,
batches are index slices, augmentation is tensor ops on the device, no worker processes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from .prepared import PreparedDataset


@dataclass
class Batch:
    """One mini-batch: inputs, the labels the learner sees, and dataset indices (into the pool)."""

    x: torch.Tensor
    y: torch.Tensor
    idx: torch.Tensor


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator | None,
                     flip: bool = True) -> torch.Tensor:
    """Zero-padded random crop (same size) and horizontal flip, vectorised over the batch."""
    n, c, h, w = x.shape
    dev = x.device
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(dev)
    xp = F.pad(x, (pad, pad, pad, pad))
    rows = (shifts[0][:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (shifts[1][:, None] + torch.arange(w, device=dev))[:, None, None, :]
    out = xp[torch.arange(n, device=dev)[:, None, None, None],
             torch.arange(c, device=dev)[None, :, None, None], rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(dev)
        out = torch.where(mask[:, None, None, None], out.flip(3), out)
    return out


class DeviceData:
    """A prepared dataset moved to the device once, with normalisation and augmentation."""

    def __init__(self, ds: PreparedDataset, device: torch.device | str, augment: str = "none",
                 channels_last: bool = False, val_labels: str = "noisy"):
        self.ds = ds
        self.device = torch.device(device)
        self.augment = augment
        self.channels_last = channels_last and ds.is_image
        self.x_pool = torch.from_numpy(ds.x_pool).to(self.device)
        self.x_test = torch.from_numpy(ds.x_test).to(self.device)
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

    @property
    def num_classes(self) -> int:
        return self.ds.num_classes

    def inputs(self, raw: torch.Tensor, train: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Augment (train only) and normalise a raw uint8/float batch."""
        x = raw.float()
        if self.ds.is_image:
            x = x / 255.0
            if train and self.augment == "crop_flip":
                x = random_crop_flip(x, 4, generator)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def train_batches(self, indices: torch.Tensor, batch_size: int,
                      generator: torch.Generator) -> Iterator[Batch]:
        """Shuffled training batches over `indices` (pool indices), noisy labels."""
        order = torch.randperm(len(indices), generator=generator).to(indices.device)
        shuffled = indices[order]
        for s in range(0, len(shuffled), batch_size):
            idx = shuffled[s:s + batch_size]
            yield Batch(self.inputs(self.x_pool[idx], True, generator), self.noisy[idx], idx)

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        """Deterministic un-augmented batches of 'train' (noisy labels), 'val' or 'test'."""
        if split == "test":
            x_all, y_all = self.x_test, self.y_test
            idx_all = torch.arange(len(self.y_test), device=self.device)
        else:
            x_all = self.x_pool
            y_all = self.noisy if split == "train" else self.val_y
            idx_all = self.train_idx if split == "train" else self.val_idx
        for s in range(0, len(idx_all), batch_size):
            idx = idx_all[s:s + batch_size]
            yield Batch(self.inputs(x_all[idx], False, None), y_all[idx], idx)

    def subset_batches(self, indices: torch.Tensor, batch_size: int) -> Iterator[Batch]:
        """Un-augmented batches of arbitrary pool indices (noisy labels), e.g. for scoring."""
        for s in range(0, len(indices), batch_size):
            idx = indices[s:s + batch_size]
            yield Batch(self.inputs(self.x_pool[idx], False, None), self.noisy[idx], idx)

