"""Model registry: `build(name, num_classes=, in_channels=, image_size=, **kwargs)`.

Conventions every model keeps (other modules rely on them):
- constructors take `num_classes`, `in_channels`, `image_size` (side of a square input;
  feature vectors use in_channels = D, image_size = 1 and tensors of shape (N, D)) and
  `dropout` (rate just before the final classifier, default 0);
- `model.classifier` is the final layer; its weight's first dimension indexes classes;
- every nonlinearity is its own non-inplace nn.ReLU / nn.LeakyReLU module, used once per
  forward, so a method can swap it by module replacement (hard-threshold alternation).
"""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from trainrepro.models.allcnn import allcnn_a, allcnn_b, allcnn_c
from trainrepro.models.cifarnet import cifarnet
from trainrepro.models.nin import nin
from trainrepro.models.resnet import resnet18, resnet34
from trainrepro.models.small import mlp, small_cnn
from trainrepro.models.vgg import vgg16
from trainrepro.models.wide_resnet import wide_resnet_mentornet
from trainrepro.registry import ConfigError, Registry

__all__ = ["MODELS", "build", "model_kwargs"]

MODELS = Registry("model")
for _name, _ctor in {
    "mlp": mlp,
    "small_cnn": small_cnn,
    "allcnn_a": allcnn_a,
    "allcnn_b": allcnn_b,
    "allcnn_c": allcnn_c,
    "nin": nin,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "wide_resnet_mentornet": wide_resnet_mentornet,
    "cifarnet": cifarnet,
}.items():
    MODELS.register(_name)(_ctor)

_COMMON = ("num_classes", "in_channels", "image_size")


def model_kwargs(name: str) -> dict[str, Any]:
    """The optional keyword arguments of model `name` with their defaults."""
    params = inspect.signature(MODELS.get_checked(name, "model")).parameters
    return {k: p.default for k, p in params.items() if k not in _COMMON}


def build(name: str, num_classes: int, in_channels: int, image_size: int, **kwargs: Any) -> nn.Module:
    """Build model `name`; unknown names or keyword arguments raise ConfigError."""
    ctor = MODELS.get_checked(name, "model")
    allowed = model_kwargs(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown argument(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    return ctor(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
