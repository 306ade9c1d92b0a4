"""The embedded sources: scikit-learn's digits and the generated Gaussians (LGL toy study).

Images are uint8 arrays shaped (N, C, H, W); feature datasets (the LGL toy Gaussians) are
float32 arrays shaped (N, D). A source that has no official test split returns test_x=None
and the prepare stage carves one out with the data seed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import SOURCES, RawDataset


@SOURCES.register("digits")
def digits_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, values 0..16), no download."""
    from sklearn.datasets import (
        load_digits,  # heavy optional import: only this source needs it
    )

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    return RawDataset(x, d.target.astype(np.int64), None, None, [str(c) for c in range(10)],
                      {"origin": "sklearn.datasets.load_digits"})


# The toy study of LGL (Fig. 2): three 2-D Gaussians with identity covariance.
GAUSSIAN_LAYOUTS: dict[str, np.ndarray] = {
    # Well separated: centres on a triangle of side ~8 standard deviations.
    "separable": np.array([[0.0, 4.0], [-3.5, -2.0], [3.5, -2.0]]),
    # Overlapping as in Fig. 2(i): centres ~2 standard deviations apart.
    "overlapping": np.array([[0.0, 1.2], [-1.0, -0.6], [1.0, -0.6]]),
}


def gaussian_blobs(layout: str, n_per_class: int, seed: int, scale: float = 1.0,
                   centres: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw n_per_class points from each of the layout's Gaussians (covariance identity);
    `centres` (a list of 2-D points) replaces the layout's own centres."""
    centres = (GAUSSIAN_LAYOUTS[layout] if centres is None else np.asarray(centres, float)) * scale
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((n_per_class, 2)) + c for c in centres]
    y = np.repeat(np.arange(len(centres)), n_per_class)
    return np.concatenate(xs).astype(np.float32), y.astype(np.int64)


@SOURCES.register("gaussians")
def gaussians_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    layout = cfg.get("layout", "separable")
    n = int(cfg.get("n_per_class", 300))
    x, y = gaussian_blobs(layout, n, int(cfg.get("data_seed", 0)), float(cfg.get("scale", 1.0)))
    return RawDataset(x, y, None, None, ["c0", "c1", "c2"],
                      {"origin": f"generated gaussians, layout={layout}, centres="
                                 f"{GAUSSIAN_LAYOUTS[layout].tolist()}"})
