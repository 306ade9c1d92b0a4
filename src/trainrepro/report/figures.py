"""Figure helpers shared by every report: deterministic PNGs (no timestamps or versions),
labelled axes, and a caption line naming scale and seeds."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ..io import atomic_write_bytes  # noqa: E402

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9,
                     "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "trainrepro"})


def save_fig(fig: plt.Figure, path: str | Path) -> Path:
    """Save a PNG byte-identically for identical inputs (no Software/date metadata)."""

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches=None)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def curves_by_cell(hist: pd.DataFrame, y: str, hue: str, title: str, ylabel: str,
                   scale: str, ax: plt.Axes | None = None) -> plt.Figure:
    """Mean curve over seeds with a min-max band, one line per value of `hue`."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 3.6))
    ax = ax or fig.add_subplot(111)
    for key, g in hist.groupby(hue, sort=True):
        agg = g.groupby("epoch")[y].agg(["mean", "min", "max"])
        seeds = sorted(g["seed"].unique())
        line, = ax.plot(agg.index, agg["mean"], label=f"{hue}={key} (seeds {','.join(map(str, seeds))})")
        ax.fill_between(agg.index, agg["min"], agg["max"], alpha=0.15, color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\nscale: {scale}; line = mean over seeds, band = min-max", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
