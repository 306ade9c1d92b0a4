"""The optimizer registry and the engine's optimizer contract.

An optimizer is built from the model: `build_optimizer(name, model, lr, weight_decay, args)`
calls the registered builder `builder(model, lr=, weight_decay=, **args)`, so an optimizer can
make one parameter group per layer (LLb-SGD). The contract every registered optimizer keeps:

- `step(closure)` as in torch: the engine's closure zeroes the gradients, runs the forward and
  backward pass of the current batch and returns the loss; an optimizer calls it exactly once
  per step (the engine accumulates its epoch statistics inside it). An optimizer that needs a
  second backward (Hessian-vector products) sets the attribute `create_graph = True`.
- The engine's schedule sets, at every epoch start, `group["lr"] = group["base_lr"] * factor *
  group["lr_scale"]`. An optimizer that adapts rates per group keeps its adaptation in
  `group["lr_scale"]` (as timm keeps layer decay in lr_scale) and, when it changes it inside an
  epoch, rescales `group["lr"]` by the same ratio; the schedule never overwrites it.
- Optional `epoch_metrics() -> dict[str, float]`: if the optimizer has it, the engine calls it
  once per epoch after evaluation and merges the result into the epoch's history row (LLb-SGD
  logs its per-layer rates so). It is the one place an optimizer may synchronise with the host.
- Optimizer state that is not per-parameter (LLb-SGD's per-layer rates and loss average) goes
  into `state_dict()` so that a checkpoint resumes the run exactly.

Path-SGD (optim/pathsgd.py) and ESGD (optim/esgd.py) register themselves beside them; a paper's
own optimizer registers from its package (LLb-SGD: papers/llbsgd/optimizer.py).

The standard optimizers are a table of name -> torch class and our defaults; where torch's
definition differs from the original paper of an optimizer, the table's comment says so.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn as nn

from ..registry import ConfigError
from . import esgd, pathsgd  # noqa: F401  (register Path-SGD and ESGD)
from .registry import OPTIMIZERS, Builder, OptimizerSpec, register_optimizer
from .schedules import SCHEDULES


def torch_kwargs(args: dict[str, Any]) -> dict[str, Any]:
    """Our flat argument names -> torch's (beta1, beta2 -> betas)."""
    out = dict(args)
    if "beta1" in out or "beta2" in out:
        out["betas"] = (out.pop("beta1", 0.9), out.pop("beta2", 0.999))
    return out


# name: (torch class, our defaults, fixed torch kwargs). Against the original definitions:
# - sgd: torch's momentum is v <- mu v + g; w <- w - lr v (Sutskever et al. 2013 form; with a
#   constant lr it equals Polyak's heavy ball v <- mu v - lr g up to the scaling of v).
# - nag: torch's Nesterov step uses g + mu v (Sutskever's reformulation of Nesterov 1983).
# - adagrad (Duchi et al. 2011): as defined; torch adds eps outside the square root.
# - adadelta (Zeiler 2012): Zeiler's update has no learning rate; torch multiplies by lr, so
#   lr = 1.0 is Zeiler's method.
# - rmsprop (Hinton's lecture 6e): as defined (alpha = the decay); eps outside the root.
# - adam (Kingma & Ba 2015): as defined, bias corrections included; eps outside the root.
# Weight decay is added to the gradient (L2 regularisation) by every one of them.
TORCH_OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": False, "dampening": 0.0}, {}),
    "nag": (torch.optim.SGD, {"momentum": 0.9}, {"nesterov": True}),
    "adam": (torch.optim.Adam, {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, {}),
    "adagrad": (torch.optim.Adagrad, {"eps": 1e-10}, {}),
    "adadelta": (torch.optim.Adadelta, {"rho": 0.9, "eps": 1e-6}, {}),
    "rmsprop": (torch.optim.RMSprop, {"alpha": 0.99, "momentum": 0.0, "eps": 1e-8}, {}),
}


def _torch_builder(cls: type[torch.optim.Optimizer], fixed: dict[str, Any]) -> Builder:
    def build(model: nn.Module, lr: float, weight_decay: float, **args: Any) -> torch.optim.Optimizer:
        return cls(model.parameters(), lr=lr, weight_decay=weight_decay, **torch_kwargs(args), **fixed)

    return build


for _name, (_cls, _defaults, _fixed) in TORCH_OPTIMIZERS.items():
    register_optimizer(_name, **_defaults)(_torch_builder(_cls, _fixed))


def check_args(allowed: dict[str, Any], args: dict[str, Any], key: str, what: str) -> None:
    """Refuse keyword arguments that `what` does not take."""
    if not isinstance(args, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(args).__name__}")
    for k in args:
        if k not in allowed:
            raise ConfigError(f"{key}.{k}: unknown argument of {what!r}; allowed: "
                              f"{', '.join(allowed) or '(none)'}")


def schedule_args(name: str) -> dict[str, Any]:
    """The keyword arguments of schedule `name` with their defaults."""
    sig = inspect.signature(SCHEDULES.get_checked(name, "train.schedule"))
    return {k: p.default for k, p in sig.parameters.items() if k not in ("epoch", "total")}


def override_groups(opt: torch.optim.Optimizer,
                    overrides: list[tuple[list[nn.Parameter], dict[str, Any]]]) -> None:
    """Move each override's parameters out of the groups the builder made into groups of their
    own with the same settings plus the override's (e.g. weight_decay 0), before any step."""
    for params, settings in overrides:
        ids = {id(p) for p in params}
        for g in list(opt.param_groups):
            moved = [p for p in g["params"] if id(p) in ids]
            if not moved:
                continue
            g["params"] = [p for p in g["params"] if id(p) not in ids]
            opt.add_param_group({**{k: v for k, v in g.items() if k != "params"}, **settings,
                                 "params": moved})
    opt.param_groups[:] = [g for g in opt.param_groups if g["params"]]


def build_optimizer(name: str, model: nn.Module, lr: float, weight_decay: float,
                    args: dict[str, Any],
                    overrides: list[tuple[list[nn.Parameter], dict[str, Any]]] | None = None
                    ) -> torch.optim.Optimizer:
    """The registered optimizer over `model`; `overrides` (a method's `optimizer_overrides`)
    give some parameters their own group settings."""
    spec: OptimizerSpec = OPTIMIZERS.get_checked(name, "train.optimizer")
    check_args(spec.args, args, "train.optimizer_args", name)
    opt = spec.build(model, lr=lr, weight_decay=weight_decay, **{**spec.args, **args})
    override_groups(opt, overrides or [])
    for g in opt.param_groups:
        g.setdefault("base_lr", g["lr"])
        g.setdefault("lr_scale", 1.0)
    return opt


def lr_factor(name: str, epoch: int, total: int, args: dict[str, Any]) -> float:
    fn = SCHEDULES.get_checked(name, "train.schedule")
    return float(fn(epoch, total, **args))


def apply_schedule(opt: torch.optim.Optimizer, factor: float) -> None:
    """Set every group's rate to its base rate x the schedule's factor x its own lr_scale."""
    for g in opt.param_groups:
        g["lr"] = g["base_lr"] * factor * g.get("lr_scale", 1.0)


__all__ = ["OPTIMIZERS", "SCHEDULES", "OptimizerSpec", "register_optimizer", "build_optimizer",
           "lr_factor", "apply_schedule", "check_args", "schedule_args"]
