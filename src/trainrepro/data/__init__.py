"""Datasets: sources (registry), noise models, the prepared on-disk format, the device loader."""
from .prepared import PreparedDataset, load_prepared, prepare_dataset
from .sources import SOURCES, RawDataset, load_raw

__all__ = ["SOURCES", "RawDataset", "load_raw", "PreparedDataset", "load_prepared", "prepare_dataset"]
