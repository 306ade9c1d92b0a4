"""Model registry: `build(name, num_classes=, in_channels=, image_size=, **kwargs)`.

Conventions every model keeps (other modules rely on them):
- constructors take `num_classes`, `in_channels`, `image_size` (side of a square input;
  feature vectors use in_channels = D, image_size = 1 and tensors of shape (N, D)) and
  `dropout` (rate just before the final classifier, default 0);
- `model.classifier` is the final layer; its weight's first dimension indexes classes;
- every nonlinearity is its own non-inplace nn.ReLU / nn.LeakyReLU module, used once per
  forward, so a method can swap it by module replacement (hard-threshold alternation);
- `activation` (default "relu") and `activation_args` are accepted by every model: `build`
  swaps the nn.ReLU modules for the activation registered under that name (activations.py).

Every model also takes `init` (models/init.py: default | uniform | normal | xavier | msra) and
`init_scale` (every parameter multiplied by it), applied by `build` after construction and
before an activation swap (the swapped units keep their own initial thresholds).
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from trainrepro.models import (  # noqa: F401  (register)
    allcnn, allcnn_small, cifarnet, imagenet, nin, resnet, small, vgg, wide_resnet)
from trainrepro.models._common import MODELS
from trainrepro.models.activations import ACTIVATIONS, check_activation_args, swap_activations
from trainrepro.models.init import CHOICES as INIT_CHOICES, apply_init
from trainrepro.registry import ConfigError

__all__ = ["ACTIVATIONS", "MODELS", "build", "model_kwargs"]

_COMMON = ("num_classes", "in_channels", "image_size")


def model_kwargs(name: str) -> dict[str, Any]:
    """The optional keyword arguments of model `name` with their defaults."""
    params = inspect.signature(MODELS.get_checked(name, "model")).parameters
    out = {k: p.default for k, p in params.items() if k not in _COMMON}
    return {**out, "activation": "relu", "activation_args": {}, "init": "default", "init_scale": 1.0}


def build(name: str, num_classes: int, in_channels: int, image_size: int, **kwargs: Any) -> nn.Module:
    """Build model `name`; unknown names or keyword arguments raise ConfigError."""
    ctor = MODELS.get_checked(name, "model")
    allowed = model_kwargs(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown argument(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    activation = kwargs.pop("activation", "relu")
    activation_args = kwargs.pop("activation_args", {})
    ACTIVATIONS.get_checked(activation, f"model {name!r}: activation")
    check_activation_args(activation, activation_args)
    init, scale = kwargs.pop("init", "default"), kwargs.pop("init_scale", 1.0)
    if init not in INIT_CHOICES:
        raise ConfigError(f"model {name!r}: init {init!r} is not allowed; allowed: {', '.join(INIT_CHOICES)}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ConfigError(f"model {name!r}: init_scale must be a positive number, got {scale!r}")
    model = ctor(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
    model = apply_init(model, init, float(scale))
    if activation != "relu":
        shape = (1, in_channels, image_size, image_size) if image_size > 1 else (1, in_channels)
        swap_activations(model, activation, activation_args, torch.zeros(shape))
    return model
