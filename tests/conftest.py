"""Shared fixtures: a prepared digits dataset in a temp dir, and a minimal train config."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

DIGITS_CFG = {"source": "digits", "test_fraction": 0.25, "val_fraction": 0.15,
              "clean_fraction": 0.1, "data_seed": 0}


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory) -> Path:
    from trainrepro.data.prepared import prepare_dataset

    import yaml

    from trainrepro.config import Params, noise_variants

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profile"] = "tiny"  # + the tiny profile's per-seed noise draws (noise.per_seed)
    variants = {("symmetric_incl", 0.0, 0), ("symmetric_incl", 0.4, 0), *noise_variants(Params(raw))["digits"]}
    root = tmp_path_factory.mktemp("prepared") / "digits"
    prepare_dataset("digits", DIGITS_CFG, sorted(variants), root)
    return root


def train_cfg(**over) -> dict:
    from trainrepro.config import TRAIN_DEFAULTS

    cfg = {**TRAIN_DEFAULTS, "model": "mlp", "model_args": {"hidden": [32]}, "epochs": 3,
           "batch_size": 128, "lr": 0.1, "optimizer_args": {"momentum": 0.9}, "augment": "none",
           "seed": 0, "name": "test", "config_hash": "h"}
    cfg.update(over)
    return cfg


from trainrepro.papers import load_all  # noqa: E402  (the registries need every paper, as in the stages)

load_all()
