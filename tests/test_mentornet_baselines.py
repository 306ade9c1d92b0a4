"""MentorNet's baselines as their authors define them (issue 9, items 5-9): focal weight of
Eq. 8, Kumar's self-paced learning, Goldberger's confusion-initialised channel without weight
decay, FullModel's dropout and the Forgetting keep-probability grid."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from conftest import REPO, train_cfg

from trainrepro.config import Params, expand_study, validate
from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import load_prepared
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS
from trainrepro.optim import build_optimizer
from trainrepro.papers.mentornet.baselines import (
    Focal,
    Goldberger,
    NoiseAdaptation,
    SelfPaced,
    noisy_confusion,
)
from trainrepro.papers.mentornet.curriculum import PercentileEMA
from trainrepro.papers.mentornet.settings import mentor_settings
from trainrepro.papers.mentornet.stage import plan
from trainrepro.registry import ConfigError


def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def instance(name: str) -> dict:
    """The resolved params of a method instance of params.yaml."""
    m = raw_params()["methods"][name]
    return METHODS[m["family"]].validate_params({k: v for k, v in m.items() if k != "family"}, name)


def engine_objective(method, logits, targets):
    """The engine's training objective for one batch (engine.Trainer.train_epoch, one rank)."""
    per = method.loss(logits, targets, None)
    v = method.sample_weights(None, per.detach(), 0.5)
    return per.mean() if v is None else (v.detach() * per).sum() / len(per)


@pytest.fixture(scope="module")
def data(prepared_digits):
    return DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0)), "cpu")


# ----------------------------------------------------------------------------- focal (item 5)
def test_focal_default_is_the_eq8_weight_without_gradient_through_it():
    """Old behaviour caught: the default (and params.yaml's `focal`) was Lin et al.'s loss, whose
    gradient also flows through (1 - p)^gamma; Eq. 8 is a weight v* with no gradient."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=g, requires_grad=True)
    t = torch.randint(0, 5, (16,), generator=g)
    for params in (Focal.validate_params({}, "focal"), instance("focal")):
        engine_objective(Focal(params, None), logits, t).backward()
        got, logits.grad = logits.grad.clone(), None
        ce = F.cross_entropy(logits, t, reduction="none")
        v = ((1 - torch.exp(-ce)) ** 2.0).detach()
        expected, = torch.autograd.grad((v * ce).sum() / 16, logits)
        assert torch.allclose(got, expected, atol=1e-6)
    lin, = torch.autograd.grad(engine_objective(Focal({"mode": "loss"}, None), logits, t), logits)
    assert not torch.allclose(lin, expected, atol=1e-4)      # the switch is a different method


# ----------------------------------------------------------------------------- self-paced (item 6)
def fake_trainer(losses_by_call: list[torch.Tensor]):
    """A TrainerView whose eval-mode losses over the training split follow `losses_by_call`
    (logits built so the cross-entropy against label 0 is exactly the given loss)."""
    n = len(losses_by_call[0])
    calls = iter(losses_by_call)

    def predict(idx, bs=1024):
        loss = next(calls)
        p0 = torch.exp(-loss)                                 # CE vs label 0 = -log p0
        rest = (1 - p0).clamp_min(1e-12)
        return torch.stack([p0.log(), rest.log()], 1)

    data = SimpleNamespace(train_idx=torch.arange(n), noisy=torch.zeros(n, dtype=torch.long),
                           num_classes=2)
    return SimpleNamespace(device=torch.device("cpu"), data=data, cfg={"eval_batch_size": 1024},
                           predict=predict, epochs=5)


def test_self_paced_default_is_kumars_one_growing_lambda_from_losses_after_burn_in():
    """Old behaviour caught: the default kept a fixed quantile of each mini-batch (never all
    samples), and `kumar` took lambda_0 from the untrained first batch. Kumar: the burn-in (here
    1 of 5 epochs) trains on everything; lambda_0 = the median training loss after it; lambda x mu
    per epoch; every sample admitted at the end."""
    first = torch.linspace(0.1, 2.0, 20)                     # losses after the burn-in epoch
    later = first * 0.9
    tr = fake_trainer([first, later, later, later * 0.2])
    m = SelfPaced(SelfPaced.validate_params({}, "self_paced"), tr)
    assert m.active_subset(0) is None                        # burn-in: all samples
    lam0 = float(torch.quantile(first, 0.5))
    sub = m.active_subset(1)
    assert math.isclose(m.lam, lam0, rel_tol=1e-6)
    assert torch.equal(sub, torch.nonzero(first < lam0).flatten())
    sub = m.active_subset(2)
    assert math.isclose(m.lam, lam0 * 1.3, rel_tol=1e-6)     # one global lambda, grown by mu
    assert torch.equal(sub, torch.nonzero(later < lam0 * 1.3).flatten())
    assert m.active_subset(3) is not None and m.all_admitted_epoch == -1
    assert m.active_subset(4) is None and m.all_admitted_epoch == 4   # all admitted
    assert m.active_subset(5) is None                        # ... from then on
    assert m.sample_weights(None, torch.rand(8), 0.5) is None  # no per-batch quantile


def test_self_paced_lambda0_param_and_the_moving_percentile_switch():
    """lambda0 > 0 is used as given; `moving_percentile` (official code) weights each batch by
    1[loss < EMA of its percentile]."""
    losses = torch.linspace(0.1, 2.0, 20)
    m = SelfPaced(SelfPaced.validate_params({"lambda0": 0.55, "burn_in_fraction": 0.0}, "s"),
                  fake_trainer([losses]))
    assert torch.equal(m.active_subset(0), torch.nonzero(losses < 0.55).flatten())
    p = SelfPaced.validate_params({"threshold": "moving_percentile", "ema_decay": 0.5}, "s")
    m = SelfPaced(p, fake_trainer([losses]))
    ema = PercentileEMA(0.5, 0.7)
    for seed in range(3):
        x = torch.rand(32, generator=torch.Generator().manual_seed(seed)) * 3
        assert torch.equal(m.sample_weights(None, x, 0.1), (x < ema.update(x)).float())
    assert m.active_subset(3) is None


def test_self_paced_trains_on_a_growing_subset_until_all_are_admitted(data):
    """Old behaviour caught: every epoch used the whole split with a batch-quantile weight; the
    last epochs never admitted every sample."""
    cfg = train_cfg(epochs=10, model="small_cnn", model_args={"width": 16}, batch_size=64, lr=0.05)
    t = Trainer(cfg, data, SelfPaced, SelfPaced.validate_params({}, "s"))   # the quick recipe
    rec = t.fit()
    n = len(data.train_idx)
    active = [h["n_active"] for h in t.history]
    assert active[:2] == [n, n] and min(active[2:]) < n      # burn-in (20%), then a subset
    assert active[-1] == n and rec["method_summary"]["all_admitted_epoch"] > 0


# ----------------------------------------------------------------------------- Goldberger (item 7)
def test_noisy_confusion_and_the_channel_init_hand_computed():
    logits = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.0, 0.0, 0.0]])
    noisy = torch.tensor([0, 1, 1, 0])
    c = noisy_confusion(logits, noisy)                        # predicted 0 thrice: 2x label 0, 1x 1
    assert torch.equal(c, torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    layer = NoiseAdaptation(3, 0.9)
    layer.init_from_confusion(c)
    p = F.softmax(layer.theta, 1)
    assert torch.allclose(p[0], torch.tensor([2 / 3, 1 / 3, 0.0]), atol=1e-6)
    assert torch.allclose(p[1], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    assert torch.allclose(p[2], torch.full((3,), 1 / 3))     # never predicted: uniform row
    soft = noisy_confusion(logits, noisy, soft=True)
    assert torch.allclose(soft.sum(), torch.tensor(4.0)) and soft[2].sum() > 0


def test_goldberger_pretrains_the_base_network_then_starts_from_its_confusion(data):
    """Old behaviour caught: the channel started from a fixed 0.9 diagonal at epoch 0 and was
    trained from the first step; Goldberger & Ben-Reuven pretrain the base network on the noisy
    labels and start the channel from its confusion matrix."""
    t = Trainer(train_cfg(epochs=4), data, Goldberger, Goldberger.validate_params({}, "g"))
    m = t.method
    assert [m.phase(e) for e in range(4)] == [0, 0, 1, 1]
    start = m.layer.theta.detach().clone()
    for e in range(2):                                      # the pretraining phase: CE only
        m.phase(e)
        t.train_epoch(e)
    assert torch.equal(m.layer.theta.detach(), start)       # untouched (no gradient, no decay)
    logits = t.predict(data.train_idx)
    expected = noisy_confusion(logits, data.noisy[data.train_idx])
    expected = expected / expected.sum(1, keepdim=True).clamp_min(1e-12)
    m.phase(2)
    m.on_phase_change(1)
    assert torch.allclose(F.softmax(m.layer.theta.detach(), 1), expected, atol=1e-6)
    assert t.phase_start == 2 and t.schedule_total == 2     # the channel run's own schedule
    batch = next(iter(data.subset_batches(data.train_idx[:32], 32)))
    out = t.model(batch.x)
    assert torch.allclose(m.loss(out, batch.y, batch), -m.layer.log_likelihood(out, batch.y))
    fixed = Trainer(train_cfg(epochs=4), data, Goldberger,
                    Goldberger.validate_params({"init": "fixed"}, "g")).method
    assert [fixed.phase(e) for e in range(4)] == [1, 1, 1, 1]   # the switch: channel from epoch 0


def test_goldberger_channel_is_excluded_from_weight_decay(data):
    """Old behaviour caught: the channel matrix sat in the optimizer's one group with the run's
    weight decay."""
    t = Trainer(train_cfg(epochs=2, weight_decay=5e-3), data, Goldberger,
                Goldberger.validate_params({}, "g"))
    theta = t.method.layer.theta
    groups = {id(p): g for g in t.optimizer.param_groups for p in g["params"]}
    assert groups[id(theta)]["weight_decay"] == 0.0
    assert {g["weight_decay"] for p, g in groups.items() if p != id(theta)} == {5e-3}
    assert groups[id(theta)]["momentum"] == 0.9 and groups[id(theta)]["base_lr"] == 0.1
    assert sum(len(g["params"]) for g in t.optimizer.param_groups) == len(list(t.model.parameters()))
    t2 = Trainer(train_cfg(epochs=2, weight_decay=5e-3), data, Goldberger,
                 Goldberger.validate_params({"channel_weight_decay": True}, "g"))
    assert len(t2.optimizer.param_groups) == 1


def test_optimizer_overrides_move_parameters_into_their_own_group():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    special = [model[1].weight]
    opt = build_optimizer("sgd", model, 0.1, 1e-3, {}, overrides=[(special, {"weight_decay": 0.0})])
    assert [len(g["params"]) for g in opt.param_groups] == [3, 1]
    assert opt.param_groups[1]["params"][0] is model[1].weight
    assert opt.param_groups[1]["weight_decay"] == 0.0 and opt.param_groups[0]["weight_decay"] == 1e-3
    assert opt.param_groups[1]["momentum"] == opt.param_groups[0]["momentum"] == 0.9


# ----------------------------------------------------------------------------- dropout, Forgetting (item 8)
def study_runs(profile: str, study: str = "mentornet"):
    raw = raw_params()
    raw["profile"] = profile
    validate(raw)
    return Params(raw), expand_study(Params(raw), study)


@pytest.mark.parametrize("profile", ["quick", "tiny", "cifar10_jpeg", "paper"])
def test_the_mentornet_studentnet_has_fullmodels_dropout(profile):
    """Old behaviour caught: FullModel (and the StudentNet every method of the study shares)
    trained without dropout; Sec. 5.1's FullModel uses dropout (official CifarNet: keep 0.8)."""
    _, runs = study_runs(profile)
    table2 = [r for r in runs if r.dataset != "gauss_overlapping"]
    assert table2 and {r.train["model_args"].get("dropout") for r in table2} == {0.2}
    full = next(r for r in table2 if r.method == "fullmodel")
    if profile in ("quick", "tiny"):
        from trainrepro.models import build
        model = build(full.train["model"], num_classes=10, in_channels=1, image_size=8,
                      **full.train["model_args"])
        assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.2


def test_forgetting_grid_spans_the_papers_keep_probabilities():
    """Old behaviour caught: the grid was dropout rates 0.1-0.7 (keep 0.3-0.9), missing the
    paper's keep probability 0.2 (and keep 0.2 is Table 4's Forgetting)."""
    keep = mentor_settings({**raw_params(), "profile": "paper"})["forgetting"]["keep_grid"]
    assert min(keep) == 0.2 and max(keep) == 0.9 and len(keep) == 8
    params, _ = study_runs("quick")
    p = plan(params)
    rates = {g for grid in p["forgetting"].values() for g, _ in grid}
    assert rates == {0.8, 0.5, 0.1}                            # keep 0.2, 0.5, 0.9
    pilots = [s for s in p["pilots"] if s.method_family == "forgetting"]
    assert {s.method_params["dropout"] for s in pilots} == rates


@pytest.mark.parametrize("grid", [[], [0.0], [1.5], [0.5, "a"]])
def test_a_bad_keep_grid_is_refused(grid):
    raw = raw_params()
    raw["mentor"] = copy.deepcopy(raw["mentor"])
    raw["mentor"]["forgetting"]["keep_grid"] = grid
    with pytest.raises(ConfigError, match="keep_grid"):
        validate(raw)


# ----------------------------------------------------------------------------- claim M1 (item 9)
def fake_runs(gain: float, dataset: str = "cifar10", model: str = "wide_resnet_mentornet"):
    import pandas as pd

    rows = []
    for seed, jitter in enumerate((-0.004, 0.0, 0.004)):
        for method, acc in (("fullmodel", 0.69 + jitter), ("mentornet_dd", 0.69 + gain - jitter)):
            rows.append({"study": "mentornet", "dataset": dataset, "model": model, "noise": 0.4,
                         "method": method, "seed": seed, "status": "ok", "test_acc": acc})
    return pd.DataFrame(rows)


def test_the_20_point_gain_claim_tests_its_size_not_only_its_sign():
    """Old behaviour caught: M1 ("an absolute 20% gain") held for any gain > 0, e.g. 5 points.
    Now M1 is the sign and M13 the size (the interval above 0.15, at paper scale only)."""
    from trainrepro.papers.mentornet import PAPER
    from trainrepro.report.claims import evaluate_claims

    claims = yaml.safe_load(PAPER.claims_path.read_text())["claims"]
    size = [c for c in claims if "absolute 20% gain over FullModel" in c["statement"]
            and "direction" not in c["statement"]]
    sign = [c for c in claims if c["id"] == "M1"]
    assert len(size) == 1

    def verdict(cs, runs, scale):
        return evaluate_claims(cs, {"mentornet": runs}, ".", scale)["verdict"].tolist()

    assert verdict(size, fake_runs(0.05), "paper") == ["does not hold"]
    assert verdict(sign, fake_runs(0.05), "paper") == ["holds"]
    assert verdict(size, fake_runs(0.20), "paper") == ["holds"]
    assert verdict(size, fake_runs(0.32), "paper") == ["holds"]      # the official README's gap
    assert verdict(size, fake_runs(0.05, "digits", "small_cnn"), "quick") == ["not testable at this scale"]


def test_the_settings_table_names_each_baselines_reading():
    from trainrepro.papers.mentornet.report import baseline_sides

    assert baseline_sides("focal", instance("focal")) == ["mode = weight [paper Eq. 8]"]
    assert baseline_sides("self_paced", {"threshold": "moving_percentile"}) == ["threshold = moving_percentile [code]"]
    sides = baseline_sides("goldberger", instance("goldberger"))
    assert sides[0] == "init = confusion [Goldberger's code]" and "[Goldberger's code]" in sides[1]
    assert baseline_sides("fullmodel", {}) == []
