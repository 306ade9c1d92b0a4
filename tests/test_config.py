"""params.yaml validation: bad input is refused before any work with one line naming the key
and the allowed values, and the stage leaves existing outputs untouched."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainrepro.config import expand_study, load_params, validate
from trainrepro.registry import ConfigError

REPO = Path(__file__).resolve().parent.parent
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def edited(path: str, value):
    raw = copy.deepcopy(RAW)
    node = raw
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[keys[-1]] = value
    return raw


def test_the_committed_params_are_valid_and_expand():
    validate(copy.deepcopy(RAW))
    p = load_params(REPO / "params.yaml")
    runs = expand_study(p, "foundation")
    assert runs and all(r.seed in (0, 1, 2) for r in runs)
    assert len({r.cell for r in runs}) * 3 == len(runs)


@pytest.mark.parametrize("path,value,pattern", [
    ("train.epochs", -1, r"train\.epochs: -1 is out of range"),
    ("train.lr", "fast", r"train\.lr: expected float"),
    ("train.optimizer", "sgdd", r"train\.optimizer: unknown optimizer 'sgdd'; allowed: .*adam"),
    ("train.model", "resnet1000", r"unknown model 'resnet1000'; allowed: .*allcnn_c"),
    ("train.report_epoch", "best_test", r"report_epoch: 'best_test' is not allowed; allowed: last, best_val"),
    ("train.schedule_args", {"gama": 0.1}, r"schedule_args\.gama: unknown argument"),
    ("noise.kind", "uniform", r"noise\.kind: unknown noise model 'uniform'"),
    ("profile", "huge", r"profile: unknown profile 'huge'; allowed: "),
    ("profiles.quick.studies.foundation.0.noise", [0.2, 1.3], r"foundation\[0\]\.noise: 1\.3 is out of range \(allowed: \[0\.0, 1\.0\]\)"),
    ("profiles.quick.studies.foundation.0.methods", ["fullmodle"], r"unknown method 'fullmodle'; allowed: "),
    ("profiles.quick.studies.foundation.0.datasets", ["digitz"], r"unknown dataset 'digitz'"),
    ("datasets.digits.source", "digitz", r"datasets\.digits\.source: unknown dataset source 'digitz'; allowed: .*cifar10"),
    ("datasets.digits.val_fraction", 1.5, r"val_fraction: 1\.5 is out of range"),
    ("methods.fullmodel.family", "fullmodle", r"methods\.fullmodel\.family: unknown method family"),
    ("methods.fullmodel.gamma", 2.0, r"methods\.fullmodel\.gamma: unknown parameter of method family 'fullmodel'"),
    ("runtime.workers", 0, r"runtime\.workers: 0 is out of range"),
    ("tarin", {}, r"params\.tarin: unknown key; allowed: "),
])
def test_bad_values_are_refused_naming_key_and_allowed_values(path, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate(edited(path, value))


def _run_stage(tmp_path, stage_args, params_edit):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params_edit))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / stage_args[0]), *stage_args[1:]],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("stage", [["prepare.py"], ["train.py", "foundation"], ["aggregate.py"]])
def test_stage_exits_nonzero_with_one_line_and_leaves_outputs_untouched(tmp_path, stage):
    sentinel = tmp_path / "results" / "foundation" / "keep.json"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("{}")
    prepared = tmp_path / "data" / "prepared" / "keep.txt"
    prepared.parent.mkdir(parents=True)
    prepared.write_text("x")
    r = _run_stage(tmp_path, stage, edited("train.epochs", -3))
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == ["error: train.epochs: -3 is out of range (allowed: >= 1)"]
    assert sentinel.read_text() == "{}" and prepared.read_text() == "x"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["keep.json", "keep.txt", "params.yaml"]


def test_each_run_seed_draws_its_own_noisy_labels(tmp_path):
    """Issue 9 item 18. Old behaviour: every seed of a cell trained on the same noise draw
    (noise=(kind, rate, noise.seed)), so intervals over seeds left out the noise draw's variance."""
    import copy

    from trainrepro.config import Params, expand_study, noise_variants, run_noise_seed
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["profile"] = "tiny"
    params = Params(raw)
    runs = [r for r in expand_study(params, "foundation") if r.noise[1] > 0]
    by_seed = {r.seed: r.noise[2] for r in runs}
    assert len(set(by_seed.values())) == len(by_seed) > 1
    assert all(r.noise[2] != r.seed for r in runs)  # a derived seed, not the training seed itself
    assert all(r.noise[2] == raw["noise"]["seed"] for r in expand_study(params, "foundation") if r.noise[1] == 0)
    assert run_noise_seed(0, 1, 0.4) == run_noise_seed(0, 1, 0.4) != run_noise_seed(1, 1, 0.4)
    shared = copy.deepcopy(raw)
    shared["noise"]["per_seed"] = False
    assert {r.noise[2] for r in expand_study(Params(shared), "foundation")} == {0}
    assert len(noise_variants(params)["digits"]) == 1 + len(by_seed)


def test_noise_per_seed_must_be_a_boolean():
    from trainrepro.config import validate
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["noise"]["per_seed"] = "yes"
    with pytest.raises(ConfigError, match="noise.per_seed"):
        validate(raw)
