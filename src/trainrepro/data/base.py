"""The dataset-source registry: each source turns a config into a `RawDataset` (arrays in
memory, or, for the imagefolder source with `storage: memmap`, read-only memmaps of whole .npy
files in the `scratch` folder it is given; not yet split). Sources register
`fn(cfg, root, scratch=None)` with `@SOURCES.register(name)` in their own module (sources.py:
embedded and generated; imagefolder.py; torchvision_sources.py: downloads), which
data/__init__.py imports by name.

Images are uint8 arrays shaped (N, C, H, W); feature datasets (the LGL toy Gaussians) are
float32 arrays shaped (N, D). A source that has no official test split returns test_x=None
and the prepare stage carves one out with the data seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..registry import Registry

SOURCES = Registry("dataset source")



@dataclass
class RawDataset:
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    classes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            x, y = getattr(self, f"{name}_x"), getattr(self, f"{name}_y")
            if x is None:
                continue
            if len(x) != len(y):
                raise ValueError(f"{name}: {len(x)} inputs but {len(y)} labels")
            if x.dtype == np.uint8 and x.ndim != 4:
                raise ValueError(f"{name}: uint8 images must be (N, C, H, W), got {x.shape}")
            if y.min() < 0 or y.max() >= len(self.classes):
                raise ValueError(f"{name}: labels outside [0, {len(self.classes)})")


def load_raw(cfg: dict[str, Any], root: str = "data/raw", scratch: Path | None = None) -> RawDataset:
    """Build the raw dataset named by cfg['source']. `scratch`: a folder on the prepared output's
    filesystem where a source may write arrays too large for memory (the imagefolder source's
    `storage: memmap`); sources that keep everything in memory ignore it."""
    fn: Callable[[dict[str, Any], str, Path | None], RawDataset] = SOURCES.get_checked(cfg["source"], "source")
    return fn(cfg, root, scratch)
