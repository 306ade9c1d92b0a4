"""The optimizer table and the lr schedules: each schedule equals torch's scheduler of the same
name; each optimizer name builds the torch class with our documented defaults."""
import math

import pytest
import torch
import torch.nn as nn

from trainrepro.optim import OPTIMIZERS, TORCH_OPTIMIZERS, build_optimizer, lr_factor
from trainrepro.registry import ConfigError

EPOCHS = 20


def torch_factors(make_scheduler) -> list[float]:
    """lr / initial lr at epochs 0..EPOCHS-1 under a torch scheduler stepped once per epoch."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt)
    out = []
    for _ in range(EPOCHS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("name, args, make", [
    ("step", {"step_size": 7, "gamma": 0.3}, lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.3)),
    ("multistep", {"milestones": [5, 12], "gamma": 0.1},
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 12], 0.1)),
    ("multistep", {"milestones": [0.5, 0.75], "gamma": 0.1},   # fractions of the phase length
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [10, 15], 0.1)),
    ("exponential", {"gamma": 0.9}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
    ("cosine", {}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS)),
    ("cosine", {"min_factor": 0.1},
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, EPOCHS, eta_min=0.1)),
    ("constant", {}, lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=1.0)),
])
def test_schedule_equals_the_torch_scheduler(name, args, make):
    ours = [lr_factor(name, e, EPOCHS, args) for e in range(EPOCHS)]
    assert ours == pytest.approx(torch_factors(make), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(TORCH_OPTIMIZERS))
def test_each_table_entry_builds_its_torch_class_with_our_defaults(name):
    cls, defaults, fixed = TORCH_OPTIMIZERS[name]
    model = nn.Linear(3, 2)
    opt = build_optimizer(name, model, lr=0.01, weight_decay=1e-4, args={})
    assert type(opt) is cls
    g = opt.param_groups[0]
    assert g["lr"] == 0.01 and g["weight_decay"] == 1e-4 and g["lr_scale"] == 1.0
    expected = dict(defaults)
    if "beta1" in expected:
        expected["betas"] = (expected.pop("beta1"), expected.pop("beta2"))
    for k, v in {**expected, **fixed}.items():
        assert g[k] == v, (name, k)
    assert set(OPTIMIZERS[name].args) == set(defaults)


def test_nag_is_nesterov_and_adam_betas_are_mapped():
    model = nn.Linear(3, 2)
    assert build_optimizer("nag", model, 0.1, 0.0, {}).param_groups[0]["nesterov"] is True
    opt = build_optimizer("adam", model, 0.1, 0.0, {"beta1": 0.5, "beta2": 0.9})
    assert opt.param_groups[0]["betas"] == (0.5, 0.9)


def test_unknown_optimizer_or_argument_is_refused_naming_the_allowed_ones():
    model = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="allowed: .*sgd"):
        build_optimizer("sgdd", model, 0.1, 0.0, {})
    with pytest.raises(ConfigError, match=r"optimizer_args\.betas.*allowed: beta1, beta2, eps"):
        build_optimizer("adam", model, 0.1, 0.0, {"betas": [0.9, 0.99]})


def test_cosine_holds_its_floor_after_the_phase_ends():
    assert lr_factor("cosine", 25, 20, {"min_factor": 0.1}) == pytest.approx(0.1)
    assert math.isclose(lr_factor("exponential", 3, 20, {"gamma": 0.5}), 0.125)


def test_exponential_decay_epochs_spans_the_run_whatever_its_length():
    """Old behaviour caught: gamma ** epoch ignored the run length, so a 30-epoch run of the
    0.95-per-epoch recipe ended at lr x0.21 (un-annealed) and a 400-epoch compute-matched baseline
    spent its last 300 epochs below lr x6e-3. With decay_epochs = 100 every run ends at 0.95 ** 100."""
    full = [lr_factor("exponential", e, 100, {"gamma": 0.95, "decay_epochs": 100}) for e in range(101)]
    assert full == pytest.approx([0.95 ** e for e in range(101)])       # the recipe's own length
    short = lr_factor("exponential", 30, 30, {"gamma": 0.95, "decay_epochs": 100})
    long = lr_factor("exponential", 400, 400, {"gamma": 0.95, "decay_epochs": 100})
    assert short == pytest.approx(0.95 ** 100) and long == pytest.approx(0.95 ** 100)
    assert lr_factor("exponential", 15, 30, {"gamma": 0.95, "decay_epochs": 100}) == pytest.approx(0.95 ** 50)
    assert lr_factor("exponential", 30, 30, {"gamma": 0.95}) == pytest.approx(0.95 ** 30)  # torch's
