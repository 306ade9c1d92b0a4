"""benchmarks/gpu_throughput.py on CPU: FLOP counting, the peak table, the engine and plain paths
and the paper-matrix counts (speed itself is measured in benchmarks/RESULTS.md, never asserted)."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_throughput as gt  # noqa: E402

from trainrepro.config import expand_study, load_params  # noqa: E402


def test_flops_per_image_counts_forward_and_the_backward_that_runs():
    # mlp 3072 -> 32 -> 10: forward 2(3072*32 + 32*10); backward: both weight grads and the
    # hidden activation's grad (2 * 32*10 each), but no grad for the input (2 * 3072*32).
    expected = 2 * (3072 * 32 + 32 * 10) + 2 * 3072 * 32 + 2 * 2 * 32 * 10
    assert gt.flops_per_image("mlp", {"hidden": [32]}, 8, torch.device("cpu")) == pytest.approx(expected)


def test_peak_table_matches_the_specific_name_first():
    assert gt.peak_for_name("NVIDIA H100 PCIe") == 756e12
    assert gt.peak_for_name("NVIDIA H100 80GB HBM3") == 989.4e12
    assert gt.peak_for_name("NVIDIA H200") == 989.4e12
    assert gt.peak_for_name("NVIDIA A100-SXM4-80GB") == 312e12
    assert gt.peak_for_name("Some GPU") is None
    assert gt.peak_flops(torch.device("cpu"), None) is None and gt.peak_flops(torch.device("cpu"), 2.0) == 2e12


def test_engine_and_plain_paths_train_on_cpu():
    dev = torch.device("cpu")
    assert gt.engine_ips("cifarnet", {}, 8, 2, 1, dev, False) > 0
    assert gt.plain_ips("cifarnet", {}, 8, 2, 1, dev, 0) > 0


def test_paper_matrix_counts_every_run_of_the_paper_profile():
    counts = gt.matrix(str(REPO / "params.yaml"))
    assert set(counts) >= {"resnet18", "vgg16", "cifarnet", "wide_resnet_mentornet"}
    params = load_params(REPO / "params.yaml")
    params.raw["profile"] = "paper"
    per_study = {s: Counter(r.model for r in expand_study(params, s)) for s in params.studies()}
    assert per_study["foundation"]["resnet18"] == 24  # 2 datasets x 4 noise x 3 seeds
    for model, c in counts.items():                   # every study's runs, none twice
        assert c["runs"] == sum(p[model] for p in per_study.values()), model
    assert counts["cifarnet"]["runs"] == counts["wide_resnet_mentornet"]["runs"] == 162  # 2 x 3 x 9 x 3
