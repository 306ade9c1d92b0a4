"""Datasets: sources (registry), noise models, the prepared on-disk format, the device loader."""
from . import imagefolder, sources, torchvision_sources  # noqa: F401  (each registers its sources)
from .base import SOURCES, RawDataset, load_raw
from .prepared import PreparedDataset, load_prepared, prepare_dataset

__all__ = ["SOURCES", "RawDataset", "load_raw", "PreparedDataset", "load_prepared", "prepare_dataset"]
