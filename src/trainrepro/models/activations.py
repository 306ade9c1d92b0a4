"""The activation registry: what `model_args.activation` may name (`relu` by default).

Every model of the registry builds its nonlinearities as separate nn.ReLU modules. `build`
(models/__init__.py) replaces each of them by the registered activation when the config asks
for another one. A paper that brings its own unit registers it here (the core never imports a
paper): `@register_activation("ht_relu", beta_init=0.0, ...)` on a factory
`factory(shape, **args) -> nn.Module`, where `shape` is the per-example shape of the unit's input
((C, H, W) after a conv, (F,) after a linear layer), found by one forward pass of a zero input.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from trainrepro.registry import ConfigError, Registry, check_value

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ActivationSpec:
    """A registered activation: its factory and the arguments it takes (with defaults)."""
    name: str
    factory: Factory
    args: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, list] = field(default_factory=dict)


ACTIVATIONS: Registry = Registry("activation")


def register_activation(name: str, choices: dict[str, list] | None = None,
                        **args: Any) -> Callable[[Factory], Factory]:
    """Decorator: register `factory(shape, **args)` under `name`; `args` are its arguments and
    their defaults (what `model_args.activation_args` may set), `choices` their allowed values."""
    def deco(fn: Factory) -> Factory:
        ACTIVATIONS.register(name)(ActivationSpec(name, fn, dict(args), dict(choices or {})))
        return fn

    return deco


@register_activation("relu")
def relu(shape: tuple[int, ...]) -> nn.Module:
    return nn.ReLU()


def check_activation_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """The activation's arguments with defaults filled in; unknown or ill-typed ones raise."""
    spec: ActivationSpec = ACTIVATIONS.get_checked(name, "model_args.activation")
    if not isinstance(args, dict):
        raise ConfigError(f"model_args.activation_args: expected a mapping, got {type(args).__name__}")
    for k, v in args.items():
        if k not in spec.args:
            raise ConfigError(f"model_args.activation_args.{k}: unknown argument of activation "
                              f"{name!r}; allowed: {', '.join(sorted(spec.args)) or '(none)'}")
        check_value(f"model_args.activation_args.{k}", v, spec.args[k], None, spec.choices.get(k))
    return {**spec.args, **args}


@torch.no_grad()
def relu_input_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Per-example input shape of every nn.ReLU module (by qualified name), from one forward
    pass of `example` (a batch of one) in eval mode."""
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            shapes.setdefault(name, tuple(inp[0].shape[1:]))
        return record

    handles = [mod.register_forward_hook(hook(name)) for name, mod in model.named_modules()
               if isinstance(mod, nn.ReLU)]
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def swap_activations(model: nn.Module, name: str, args: dict[str, Any],
                     example: torch.Tensor) -> nn.Module:
    """Replace every nn.ReLU module of `model` (in place) by activation `name`."""
    if name == "relu":
        return model
    spec: ActivationSpec = ACTIVATIONS.get_checked(name, "model_args.activation")
    full = check_activation_args(name, args)
    shapes = relu_input_shapes(model, example)
    for qual, shape in shapes.items():
        parent_name, _, child = qual.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, spec.factory(shape, **full))
    return model
