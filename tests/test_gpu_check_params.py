"""The GPU checks' params (benchmarks/gpu_check_params.py): valid for the current params.yaml,
the cifar10_jpeg profile cut to its alternation and llbsgd studies with the stated epochs."""
import subprocess
import sys
from pathlib import Path

import pytest

from trainrepro.config import expand_study, load_params
from trainrepro.papers import load_all

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("smoke", [False, True])
def test_gpu_check_params_are_a_valid_reduced_cifar10_jpeg_profile(tmp_path, smoke):
    load_all()
    out = tmp_path / "params.yaml"
    subprocess.run([sys.executable, "benchmarks/gpu_check_params.py", str(out), "--alt-epochs", "3",
                    "--llb-epochs", "2", "--runs-per-gpu", "2", *(["--smoke"] if smoke else [])],
                   cwd=REPO, check=True)
    p = load_params(out)
    assert p.profile_name == "cifar10_jpeg" and sorted(p.studies()) == ["alternation", "llbsgd"]
    assert p.raw["runtime"]["runs_per_gpu"] == 2
    for study, epochs in (("alternation", 3), ("llbsgd", 2)):
        runs = expand_study(p, study)
        assert runs and {r.train["epochs"] for r in runs} == {1 if smoke else epochs}
        assert {r.dataset for r in runs} == ({"digits"} if smoke else {"cifar10_jpeg"})
    llb = expand_study(p, "llbsgd")
    assert {r.model for r in llb} == ({"small_cnn"} if smoke else {"resnet34"})
    assert {r.seed for r in llb} == {0, 1}
