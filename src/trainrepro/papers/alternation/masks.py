"""Multi-layer supports: bit-packed per-example storage (I-alternation), the batch-wise mask of
Eq. 39-41 (B-alternation), and context managers that fix the masks of a network's units."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .units import HardThreshold

_BIT_WEIGHTS = (128, 64, 32, 16, 8, 4, 2, 1)


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(B, n) bool -> (B, ceil(n / 8)) uint8, most significant bit first."""
    b, n = bits.shape
    nbytes = math.ceil(n / 8)
    padded = torch.zeros(b, nbytes * 8, dtype=torch.uint8, device=bits.device)
    padded[:, :n] = bits
    w = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=bits.device)
    return (padded.view(b, nbytes, 8) * w).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, n: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """Inverse of `pack_bits`: (B, nbytes) uint8 -> (B, n) bool, or 0 / 1 in `dtype` (a lookup
    of each byte's 8 values: about 2x faster on CPU than the bitwise unpack, and no cast after)."""
    if dtype != torch.bool:
        w = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=packed.device)
        table = ((torch.arange(256, device=packed.device, dtype=torch.uint8).unsqueeze(-1) & w) != 0).to(dtype)
        return F.embedding(packed.long(), table).view(packed.shape[0], -1)[:, :n]
    w = torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8, device=packed.device)
    return ((packed.unsqueeze(-1) & w) != 0).view(packed.shape[0], -1)[:, :n]


class MaskStore:
    """Every training example's multi-layer support, bit-packed in one uint8 tensor on the device.

    Row r holds the concatenated flattened masks of all units for pool index `rows[r]`;
    `row_of` maps a pool index to its row (-1 for examples without a stored mask)."""

    def __init__(self, units: Sequence[HardThreshold], indices: torch.Tensor, pool_size: int):
        self.shapes = [u.shape for u in units]
        self.sizes = [u.numel for u in units]
        self.bits = sum(self.sizes)
        self.bytes_per_example = math.ceil(self.bits / 8)
        device = indices.device
        self.row_of = torch.full((pool_size,), -1, dtype=torch.long, device=device)
        self.row_of[indices] = torch.arange(len(indices), device=device)
        self.packed = torch.zeros(len(indices), self.bytes_per_example, dtype=torch.uint8, device=device)

    @property
    def total_bytes(self) -> int:
        return int(self.packed.numel())

    def write(self, idx: torch.Tensor, masks: Sequence[torch.Tensor]) -> None:
        """Store the masks (one (B, *shape) bool tensor per unit) of pool indices `idx`."""
        flat = torch.cat([m.reshape(len(idx), -1) for m in masks], dim=1)
        self.packed[self.row_of[idx]] = pack_bits(flat)

    def read(self, idx: torch.Tensor, dtype: torch.dtype = torch.bool) -> list[torch.Tensor]:
        """The stored masks of pool indices `idx`, one (B, *shape) tensor per unit (bool, or
        0 / 1 in `dtype`). Unknown indices raise on CPU; on CUDA that check would be a host sync
        per step (training batches come from the stored split by construction)."""
        rows = self.row_of[idx]
        if rows.device.type == "cpu" and bool((rows < 0).any()):
            raise KeyError("no stored mask for some of these examples")
        flat = unpack_bits(self.packed[rows], self.bits, dtype)
        return [part.view(len(idx), *shape)
                for part, shape in zip(flat.split(self.sizes, dim=1), self.shapes)]

    def density(self) -> float:
        """Fraction of active units over all stored examples."""
        ones = unpack_bits(self.packed, self.bits).sum()
        return float(ones) / max(1, self.packed.shape[0] * self.bits)


@contextmanager
def fixed_masks(units: Sequence[HardThreshold], masks: Sequence[torch.Tensor]) -> Iterator[None]:
    """Inside the block every unit applies its given mask instead of its rule."""
    for u, m in zip(units, masks):
        u.fixed_mask = m
    try:
        yield
    finally:
        for u in units:
            u.fixed_mask = None


@contextmanager
def recording(units: Sequence[HardThreshold]) -> Iterator[list[list[torch.Tensor]]]:
    """Inside the block every unit appends its free-mode masks; yields the per-unit lists."""
    lists: list[list[torch.Tensor]] = [[] for _ in units]
    for u, lst in zip(units, lists):
        u.record = lst
    try:
        yield lists
    finally:
        for u in units:
            u.record = None


@contextmanager
def batch_rule(units: Sequence[HardThreshold],
               rule: Callable[[torch.Tensor, HardThreshold], torch.Tensor]) -> Iterator[None]:
    """Inside the block every unit computes one mask per batch with `rule(q, unit)`."""
    for u in units:
        u.batch_rule = rule
    try:
        yield
    finally:
        for u in units:
            u.batch_rule = None


def batch_mask(q: torch.Tensor, unit: HardThreshold, rule: str = "energy", energy: str = "ht",
               tau: float = 0.0, tau_mode: str = "absolute", vote: float = 0.5) -> torch.Tensor:
    """The B-alternation support of one layer, shared by the batch (shape `unit.shape`).

    rule "energy" (Eq. 41): m_i = 1 iff sum_n x_i^(n)^2 > beta_B, with beta_B = N * t, so the
        threshold grows linearly with the batch size N and the mask compares the *mean* energy
        of unit i over the batch with t (a batch of one reduces to Eq. 38, x^2 > t).
        x = q (energy "q", Eq. 39 literally) or x = eta*(q; beta), the units' hard-thresholded
        outputs (energy "ht": the example-wise supports' values, so that t = 0 keeps the union
        of the batch's example-wise supports).
        t = tau (tau_mode "absolute") or tau times the mean of x^2 over the batch and the layer
        (tau_mode "relative": scale-free).
    rule "majority" (the variant of Sec. 4.2): m_i = 1 iff more than `vote` of the batch's
        example-wise masks (the unit's own rule) have unit i active.
    """
    n = q.shape[0]
    if rule == "majority":
        return unit.mask(q).float().mean(0) > vote  # example-wise masks: 0 / 1 in q's dtype
    if energy == "q":
        e = (q.float() * q.float()).sum(0)
    else:  # x = q * m, squared in place (one temporary instead of two)
        x = q.float() * unit.mask(q).float()
        e = x.mul_(x).sum(0)
    return e > (n * tau if tau_mode == "absolute" else tau * e.mean())  # no host sync
