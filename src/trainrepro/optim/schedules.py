"""Learning-rate schedules as pure functions `factor(epoch, total, **args)` of the epoch within
the current phase: a method that restarts training (LGL) restarts the schedule by moving the
phase start. Each equals the torch scheduler named in its docstring (tests/test_optim.py)."""
from __future__ import annotations

import math

from ..registry import Registry

SCHEDULES = Registry("lr schedule")


@SCHEDULES.register("constant")
def constant(epoch: int, total: int) -> float:
    """torch.optim.lr_scheduler.ConstantLR with factor 1."""
    return 1.0


@SCHEDULES.register("step")
def step(epoch: int, total: int, step_size: int = 30, gamma: float = 0.1) -> float:
    """torch's StepLR(step_size, gamma)."""
    return gamma ** (epoch // step_size)


@SCHEDULES.register("multistep")
def multistep(epoch: int, total: int, milestones: list = (0.5, 0.75), gamma: float = 0.1) -> float:
    """torch's MultiStepLR(milestones, gamma); milestones below 1 are fractions of the phase
    length (rounded up to an epoch), others are epochs."""
    ms = [m * total if m < 1 else m for m in milestones]
    return gamma ** sum(epoch >= m for m in ms)


@SCHEDULES.register("exponential")
def exponential(epoch: int, total: int, gamma: float = 0.95, decay_epochs: int = 0) -> float:
    """torch's ExponentialLR(gamma): gamma ** epoch, whatever the run length (decay_epochs 0).

    decay_epochs > 0: `gamma` is the per-epoch decay of a run of `decay_epochs` epochs, and the
    schedule spans the actual run instead: gamma ** (epoch * decay_epochs / total), so a run of
    any length ends at the decay gamma ** decay_epochs of the recipe (LGL's 0.95 per epoch over
    100 epochs: a 30-epoch run decays by 0.95 ** (100/30) per epoch, a 400-epoch compute-matched
    baseline by 0.95 ** (100/400)); a run of exactly decay_epochs epochs is plain gamma ** epoch."""
    if decay_epochs > 0:
        return gamma ** (epoch * decay_epochs / max(total, 1))
    return gamma ** epoch


@SCHEDULES.register("cosine")
def cosine(epoch: int, total: int, min_factor: float = 0.0) -> float:
    """torch's CosineAnnealingLR(T_max=total, eta_min=min_factor * lr), held at its end."""
    t = min(epoch / max(total, 1), 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
