"""Optimizer and learning-rate-schedule registries.

Optimizers are built by name from `train.optimizer` with `train.optimizer_args`; schedules
are pure functions `factor(epoch, total, **args)` of the epoch within the current phase, so a
method that restarts training (LGL) restarts the schedule by moving the phase start.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Iterable

import torch

from ..registry import ConfigError, Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("lr schedule")


@OPTIMIZERS.register("sgd")
def sgd(params: Iterable, lr: float, weight_decay: float, momentum: float = 0.9,
        nesterov: bool = False, dampening: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                           dampening=dampening, weight_decay=weight_decay)


@OPTIMIZERS.register("nag")
def nag(params: Iterable, lr: float, weight_decay: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


@OPTIMIZERS.register("adam")
def adam(params: Iterable, lr: float, weight_decay: float, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("adagrad")
def adagrad(params: Iterable, lr: float, weight_decay: float, eps: float = 1e-10) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=lr, eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("adadelta")
def adadelta(params: Iterable, lr: float, weight_decay: float, rho: float = 0.9,
             eps: float = 1e-6) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: Iterable, lr: float, weight_decay: float, alpha: float = 0.99,
            momentum: float = 0.0, eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, momentum=momentum, eps=eps,
                               weight_decay=weight_decay)


@SCHEDULES.register("constant")
def constant(epoch: int, total: int) -> float:
    return 1.0


@SCHEDULES.register("step")
def step(epoch: int, total: int, step_size: int = 30, gamma: float = 0.1) -> float:
    return gamma ** (epoch // step_size)


@SCHEDULES.register("multistep")
def multistep(epoch: int, total: int, milestones: list = (0.5, 0.75), gamma: float = 0.1) -> float:
    """Milestones below 1 are fractions of the phase length, others are epochs."""
    ms = [m * total if m < 1 else m for m in milestones]
    return gamma ** sum(epoch >= m for m in ms)


@SCHEDULES.register("exponential")
def exponential(epoch: int, total: int, gamma: float = 0.95) -> float:
    return gamma ** epoch


@SCHEDULES.register("cosine")
def cosine(epoch: int, total: int, min_factor: float = 0.0) -> float:
    t = min(epoch / max(total, 1), 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))


def check_args(fn: Callable, args: dict[str, Any], key: str) -> None:
    """Refuse keyword arguments the registered function does not take."""
    sig = inspect.signature(fn)
    skip = {"params", "lr", "weight_decay", "epoch", "total"}
    allowed = [p for p in sig.parameters if p not in skip]
    for k in args:
        if k not in allowed:
            raise ConfigError(f"{key}.{k}: unknown argument of {fn.__name__!r}; allowed: "
                              f"{', '.join(allowed) or '(none)'}")


def build_optimizer(name: str, params: Iterable, lr: float, weight_decay: float,
                    args: dict[str, Any]) -> torch.optim.Optimizer:
    fn = OPTIMIZERS.get_checked(name, "train.optimizer")
    check_args(fn, args, "train.optimizer_args")
    return fn(params, lr=lr, weight_decay=weight_decay, **args)


def lr_factor(name: str, epoch: int, total: int, args: dict[str, Any]) -> float:
    fn = SCHEDULES.get_checked(name, "train.schedule")
    return float(fn(epoch, total, **args))


