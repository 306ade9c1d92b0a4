"""The optimizer registry: name -> builder `builder(model, lr, weight_decay, **args)` (contract:
optim/__init__.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from ..registry import Registry

Builder = Callable[..., torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer: its builder and the extra arguments it takes (with defaults)."""
    name: str
    build: Builder
    args: dict[str, Any] = field(default_factory=dict)


OPTIMIZERS: Registry = Registry("optimizer")


def register_optimizer(name: str, **args: Any) -> Callable[[Builder], Builder]:
    """Decorator: register `builder(model, lr, weight_decay, **args)` under `name`; `args` are
    the optimizer-specific arguments and their defaults (what `optimizer_args` may set)."""
    def deco(fn: Builder) -> Builder:
        OPTIMIZERS.register(name)(OptimizerSpec(name, fn, dict(args)))
        return fn

    return deco


