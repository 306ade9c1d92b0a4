"""MentorNet: PD curriculum, lambda, burn-in, weights without gradient, baseline losses,
DD fitting, DD transfer across class counts, and the mentor stage feeding the train stage."""
from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from conftest import REPO, train_cfg

from trainrepro.papers.mentornet.baselines import (
    NoiseAdaptation,
    focal_loss,
    goldberger_loss,
    reed_loss,
)
from trainrepro.papers.mentornet.curriculum import (
    PercentileEMA,
    epoch_percent,
    pd_targets,
    pd_weight,
)
from trainrepro.papers.mentornet.fit import fit_mentor
from trainrepro.papers.mentornet.net import build_mentor, load_mentor, save_mentor
from trainrepro.papers.mentornet.spade import MentorNetSPADE

FIT = {"batch_size": 64, "steps": 300, "lr": 0.05, "lr_decay": 0.9, "lr_decay_steps": 100,
       "grad_clip": 5.0, "seed": 0}


# ----------------------------------------------------------------------------- curriculum
def test_pd_weight_matches_eq7_on_a_grid():
    loss = torch.linspace(0, 5, 51)
    for lam1 in (0.0, 0.7, 2.0):
        assert torch.equal(pd_weight(loss, lam1, 0.0), (loss <= lam1).float())
        for lam2 in (0.5, 1.0, 3.0):
            expected = [min(max(0.0, 1 - (float(l) - lam1) / lam2), 1.0) for l in loss]
            assert torch.allclose(pd_weight(loss, lam1, lam2), torch.tensor(expected), atol=1e-6)
    # hand-computed points: lambda1 = 1, lambda2 = 2
    got = pd_weight(torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0]), 1.0, 2.0)
    assert torch.allclose(got, torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0]))


def test_pd_targets_use_the_moving_average_as_lambda1_and_the_code_schedule():
    loss = torch.tensor([0.5, 1.5, 2.5, 3.5])
    diff = loss - 1.0                       # lambda = 1
    epoch = torch.tensor([50, 50, 50, 50])
    paper = pd_targets(loss, diff, epoch, {"schedule": "paper", "lambda2": 2.0})
    assert torch.allclose(paper, torch.tensor([1.0, 0.75, 0.25, 0.0]))
    code = {"schedule": "code", "lambda2": 1.0, "code_burn_in_epoch": 18, "code_switch_epoch": 90}
    assert torch.equal(pd_targets(loss, diff, torch.full((4,), 10), code), torch.ones(4))
    assert torch.equal(pd_targets(loss, diff, epoch, code), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    late = pd_targets(loss, diff, torch.full((4,), 95), code)
    assert torch.allclose(late, torch.tensor([1.0, 0.5, 0.0, 0.0]))


def test_percentile_moving_average_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    batches = [rng.exponential(1.0, 64).astype(np.float32) for _ in range(5)]
    ema = PercentileEMA(decay=0.9, percentile=0.7)
    expected = None
    for b in batches:
        got = ema.update(torch.from_numpy(b))
        p = float(np.quantile(b, 0.7, method="nearest"))
        expected = p if expected is None else 0.9 * expected + 0.1 * p
        assert math.isclose(float(got), expected, rel_tol=1e-5)
    state = ema.state_dict()
    other = PercentileEMA(0.9, 0.7)
    other.load_state_dict(state)
    assert float(other.value) == float(ema.value) and other.steps == 5
    assert epoch_percent(0.0) == 0 and epoch_percent(0.999) == 99 and epoch_percent(1.0) == 99


# ----------------------------------------------------------------------------- SPADE
def _spade(tmp_path: Path, **params) -> MentorNetSPADE:
    net = build_mentor(seed=0)
    save_mentor(tmp_path / "m.pt", net, {"kind": "test"})
    trainer = SimpleNamespace(device=torch.device("cpu"), generator=torch.Generator().manual_seed(0),
                              cfg={"epochs": 10, "seed": 0, "dataset": "digits"})
    p = MentorNetSPADE.validate_params({"mentor_path": str(tmp_path / "m.pt"), "update_at": [], **params}, "m")
    return MentorNetSPADE(p, trainer)


def test_burn_in_bernoulli_drops_independently(tmp_path):
    m = _spade(tmp_path, burn_in="bernoulli", burn_in_drop_rate=0.3)
    m.on_epoch_start(0)
    vs = torch.cat([m.sample_weights(None, torch.rand(100), 0.01) for _ in range(50)])
    assert set(vs.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(vs.mean()) - 0.7) < 0.03
    per_batch = vs.view(50, 100).sum(1)
    assert per_batch.std() > 0            # not a fixed count per batch


def test_burn_in_fixed_fraction_drops_exactly_that_many(tmp_path):
    m = _spade(tmp_path, burn_in="fixed_fraction", burn_in_drop_rate=0.5)
    m.on_epoch_start(1)                   # burn-in = first 20% of 10 epochs = epochs 0, 1
    for _ in range(10):
        v = m.sample_weights(None, torch.rand(64), 0.15)
        assert int(v.sum()) == 32
    m.on_epoch_start(2)                   # after burn-in: the mentor's weights in (0, 1)
    v = m.sample_weights(None, torch.rand(64), 0.25)
    assert ((v > 0) & (v < 1)).all()


def test_weights_carry_no_gradient(tmp_path):
    m = _spade(tmp_path, burn_in_fraction=0.0)
    m.on_epoch_start(5)
    for p in m.mentor.parameters():
        assert not p.requires_grad
    logits = torch.randn(8, 10, requires_grad=True)
    loss = F.cross_entropy(logits, torch.arange(8), reduction="none")
    v = m.sample_weights(None, loss, 0.5)  # even given a loss with a graph
    assert not v.requires_grad and v.grad_fn is None
    (v * loss).sum().backward()
    expected = torch.autograd.grad((v * F.cross_entropy(logits, torch.arange(8), reduction="none")).sum(),
                                   logits)[0]
    assert torch.allclose(logits.grad, expected)


def test_spade_state_dict_round_trips(tmp_path):
    m = _spade(tmp_path, burn_in_fraction=0.0)
    m.on_epoch_start(3)
    for _ in range(3):
        m.sample_weights(None, torch.rand(32), 0.3)
    state = copy.deepcopy(m.state_dict())
    m2 = _spade(tmp_path, burn_in_fraction=0.0)
    m2.load_state_dict(state)
    x = torch.rand(32)
    assert torch.equal(m.sample_weights(None, x, 0.35), m2.sample_weights(None, x, 0.35))


# ----------------------------------------------------------------------------- baseline losses
def test_focal_loss_hand_computed():
    logits = torch.tensor([[math.log(3.0), 0.0]])      # p = [0.75, 0.25]
    t = torch.tensor([0])
    ce = -math.log(0.75)
    assert math.isclose(float(focal_loss(logits, t, 2.0)), 0.25 ** 2 * ce, rel_tol=1e-5)
    assert math.isclose(float(focal_loss(logits, t, 0.0)), ce, rel_tol=1e-5)
    # Eq. 8: the weight (1 - exp(-l))^gamma equals (1 - p_t)^gamma
    assert math.isclose((1 - math.exp(-ce)) ** 2, 0.0625, rel_tol=1e-6)


def test_reed_soft_and_hard_hand_computed():
    logits = torch.tensor([[math.log(3.0), 0.0]])      # p = [0.75, 0.25]
    lp0, lp1 = math.log(0.75), math.log(0.25)
    # noisy label 1, beta 0.8: soft target 0.8*[0,1] + 0.2*[0.75,0.25] = [0.15, 0.85]
    soft = reed_loss(logits, torch.tensor([1]), 0.8, "soft")
    assert math.isclose(float(soft), -(0.15 * lp0 + 0.85 * lp1), rel_tol=1e-5)
    # hard target 0.8*[0,1] + 0.2*onehot(argmax p = 0) = [0.2, 0.8]
    hard = reed_loss(logits, torch.tensor([1]), 0.8, "hard")
    assert math.isclose(float(hard), -(0.2 * lp0 + 0.8 * lp1), rel_tol=1e-5)
    assert torch.allclose(reed_loss(logits, torch.tensor([1]), 1.0, "soft"),
                          F.cross_entropy(logits, torch.tensor([1]), reduction="none"))


def test_goldberger_layer_hand_computed():
    layer = NoiseAdaptation(2, 0.9)
    with torch.no_grad():                # p(y | z) = [[0.8, 0.2], [0.3, 0.7]]
        layer.theta.copy_(torch.tensor([[0.8, 0.2], [0.3, 0.7]]).log())
    logits = torch.tensor([[math.log(3.0), 0.0]])      # p(z | x) = [0.75, 0.25]
    # p(y=1 | x) = 0.75*0.2 + 0.25*0.7 = 0.325
    got = goldberger_loss(logits, torch.tensor([1]), layer)
    assert math.isclose(float(got.detach()), -math.log(0.325), rel_tol=1e-5)
    init = F.softmax(NoiseAdaptation(4, 0.7).theta, 1)
    assert torch.allclose(init.diagonal(), torch.full((4,), 0.7), atol=1e-5)
    assert torch.allclose(init.sum(1), torch.ones(4))


# ----------------------------------------------------------------------------- DD fitting
def test_dd_mentor_on_separable_features_ranks_clean_above_corrupted():
    g = torch.Generator().manual_seed(0)
    n = 400
    clean = torch.rand(n, generator=g) * 0.8             # small loss
    noisy = 2.0 + torch.rand(n, generator=g) * 2.0        # large loss
    loss = torch.cat([clean, noisy])
    feats = {"loss": loss, "loss_diff": loss - 1.0, "epoch": torch.randint(0, 100, (2 * n,), generator=g)}
    target = torch.cat([torch.ones(n), torch.zeros(n)])
    net = build_mentor(seed=1)
    stats = fit_mentor(net, feats, target, "bce", FIT)
    assert stats["accuracy"] > 0.98
    with torch.no_grad():
        v = net(loss, loss - 1.0, 50)
    assert float(v[:n].min()) > float(v[n:].max())      # every clean sample above every corrupted one


def test_mentor_saved_and_loaded_with_weights_only(tmp_path):
    net = build_mentor({"fc_hidden": 7, "epoch_embedding_trainable": False}, seed=3)
    save_mentor(tmp_path / "x.pt", net, {"kind": "dd", "noise_rate": 0.4, "stats": {"n": 3}})
    blob = torch.load(tmp_path / "x.pt", weights_only=True)
    assert blob["config"]["fc_hidden"] == 7
    back, meta = load_mentor(tmp_path / "x.pt")
    x = torch.rand(5)
    assert torch.equal(back(x, x - 0.5, 10), net.eval()(x, x - 0.5, 10)) and meta["noise_rate"] == 0.4
    assert not back.epoch_emb.weight.requires_grad


# ----------------------------------------------------------------------------- stage -> train
def _tiny_params(tmp: Path) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profile"] = "quick"
    raw["runtime"] = {"device": "cpu", "workers": 1, "threads": 1, "progress": False}
    raw["profiles"]["quick"]["studies"] = {"mentornet": [
        {"datasets": ["digits"], "noise": [0.4], "seeds": [0],
         "methods": ["forgetting", "mentornet_pd", "mentornet_dd", "mentornet_dd_transfer"],
         "train": {"epochs": 4}},
        {"datasets": ["gauss_overlapping"], "noise": [0.4], "seeds": [0], "methods": ["mentornet_dd"],
         "train": {"model": "mlp", "model_args": {"hidden": [16]}, "epochs": 4, "batch_size": 32}},
    ]}
    raw["mentor"]["profiles"] = {"quick": {"fit": {"batch_size": 128, "steps": 60},
                                           "forgetting": {"keep_grid": [1.0, 0.5]},
                                           "pd": {"grid_points": 9},
                                           "surface": {"points": 9}}}
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def stage_outputs(tmp_path_factory):
    from trainrepro.config import load_params, noise_variants
    from trainrepro.data.prepared import prepare_dataset
    from trainrepro.papers.mentornet.stage import run

    tmp = tmp_path_factory.mktemp("mentor_stage")
    params = load_params(_tiny_params(tmp))
    prepared = tmp / "prepared"
    for name in ("digits", "gauss_overlapping"):
        prepare_dataset(name, params.raw["datasets"][name], noise_variants(params)[name], prepared / name)
    summary = run(params, str(prepared), str(tmp / "results"))
    return params, prepared, tmp / "results", summary


def test_mentor_stage_writes_loadable_mentors_and_the_prop1_metric(stage_outputs):
    _, _, results, summary = stage_outputs
    out = results / "mentors"
    names = set(summary["mentors"])
    assert names == {"pd", "dd-digits-small_cnn-n0.4-s0", "dd-gauss_overlapping-mlp-n0.4-s0"}
    for n in names:
        blob = torch.load(out / f"{n}.pt", weights_only=True)
        assert set(blob) >= {"config", "state_dict", "meta"}
    v = summary["mentornet_dd"]["prop1_violations_fixed_lambda"]   # {value, lo, hi} over mentors
    assert v["n"] == 2 and 0.0 <= v["lo"] <= v["value"] <= v["hi"] <= 1.0
    assert summary["mentornet_pd"]["eq7_error"]["max_abs_error"] >= 0.0
    assert (out / "curriculum_surface.png").exists()
    sel = summary["forgetting"]["digits-small_cnn-n0.4-forgetting"]
    assert sel["dropout"] in (0.0, 0.5) and set(sel["grid"]) == {"0", "0.5"}
    assert sel["keep_prob"] == 1.0 - sel["dropout"]


def test_dd_transfer_between_datasets_with_different_class_counts(stage_outputs):
    from trainrepro.io import read_json

    _, prepared, results, _ = stage_outputs
    a = read_json(results / "mentors" / "assignments.json")
    assert a["digits-small_cnn-n0.4-mentornet_dd_transfer/seed0"]["name"] == "dd-gauss_overlapping-mlp-n0.4-s0"
    assert a["digits-small_cnn-n0.4-mentornet_dd/seed0"]["name"] == "dd-digits-small_cnn-n0.4-s0"
    meta = load_mentor(a["digits-small_cnn-n0.4-mentornet_dd_transfer/seed0"]["path"])[1]
    src = read_json(prepared / "gauss_overlapping" / "manifest.json")["num_classes"]
    dst = read_json(prepared / "digits" / "manifest.json")["num_classes"]
    assert meta["dataset"] == "gauss_overlapping" and (src, dst) == (3, 10)


def test_mentor_stage_outputs_load_in_the_train_stage(stage_outputs):
    from dataclasses import replace

    from trainrepro.config import expand_study
    from trainrepro.io import read_json
    from trainrepro.methods import METHODS
    from trainrepro.runner import run_study

    params, prepared, results, _ = stage_outputs
    runs = [r for r in expand_study(params, "mentornet") if r.dataset == "digits"]
    runs = [replace(r, method_params={**r.method_params,
                                      **METHODS[r.method_family].resolve_run(r, str(results))})
            for r in runs]
    summaries = run_study(params, "mentornet", str(prepared), str(results), runs=runs)
    assert len(summaries) == 4 and all(s["status"] == "ok" for s in summaries)
    rec = read_json(results / "mentornet" / "digits-small_cnn-n0.4-mentornet_dd_transfer" / "seed0" / "metrics.json")
    assert rec["method_summary"]["transfer"] is True and rec["method_summary"]["updates"] == []
    rec = read_json(results / "mentornet" / "digits-small_cnn-n0.4-mentornet_dd" / "seed0" / "metrics.json")
    assert rec["method_summary"]["mentor"] == "dd-digits-small_cnn-n0.4-s0"
    assert [u["epoch"] for u in rec["method_summary"]["updates"]] == [2, 3]   # update_at 0.5, 0.64 of 4
    assert rec["config"]["method_params"]["mentor_sha256"]
    rec = read_json(results / "mentornet" / "digits-small_cnn-n0.4-forgetting" / "seed0" / "metrics.json")
    assert rec["config"]["method_params"]["dropout"] in (0.0, 0.5)


def test_spade_run_resumes_exactly_after_an_interruption(stage_outputs, tmp_path):
    """lambda, the burn-in RNG, the (updated) mentor and the weight statistics are checkpointed."""
    from trainrepro.config import noise_variants
    from trainrepro.data.loader import DeviceData
    from trainrepro.data.prepared import load_prepared
    from trainrepro.engine import Trainer
    from trainrepro.io import read_json

    params, prepared, results, _ = stage_outputs
    a = read_json(results / "mentors" / "assignments.json")["digits-small_cnn-n0.4-mentornet_dd/seed0"]
    variant = next(v for v in noise_variants(params)["digits"] if v[1] == 0.4)
    data = DeviceData(load_prepared(prepared / "digits", variant), "cpu")
    params = MentorNetSPADE.validate_params({"mentor_path": a["path"], "update_at": [0.5],
                                             "burn_in_fraction": 0.25}, "m")
    cfg = train_cfg(model="small_cnn", model_args={"width": 8}, epochs=4, batch_size=64)
    full = Trainer(cfg, data, MentorNetSPADE, params, run_dir=tmp_path / "full").fit()

    class Interrupted(MentorNetSPADE):
        def on_epoch_start(self, epoch):
            if epoch == 3:
                raise KeyboardInterrupt
            super().on_epoch_start(epoch)

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, data, Interrupted, params, run_dir=tmp_path / "cut").fit()
    resumed = Trainer(cfg, data, MentorNetSPADE, params, run_dir=tmp_path / "cut").fit()
    assert resumed["resumed"] is True
    import pandas as pd

    keys = ["train_loss", "test_acc", "lambda", "mean_weight"]
    f = pd.read_csv(tmp_path / "full" / "history.csv")[keys]
    c = pd.read_csv(tmp_path / "cut" / "history.csv")[keys]
    assert f.equals(c)
    assert full["method_summary"]["updates"] == resumed["method_summary"]["updates"]
