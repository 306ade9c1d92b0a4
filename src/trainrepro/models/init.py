"""Weight initialisations selectable for every model (`models.build(..., init=..., init_scale=...)`).

Applied to the weights of every Conv and Linear layer after construction (biases set to 0;
normalisation layers keep weight 1, bias 0). `default` keeps each module's own PyTorch
initialisation. The LLb-SGD paper's Table 4 compares uniform, normal, Xavier and MSRA; it gives
no ranges, so `uniform` and `normal` use the Keras/TensorFlow initialiser defaults of its
framework (U(-0.05, 0.05), N(0, 0.05^2)).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from trainrepro.registry import Registry

INITS = Registry("init")
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@INITS.register("uniform")
def uniform(w: torch.Tensor) -> None:
    """U(-0.05, 0.05) (tf.keras RandomUniform defaults)."""
    nn.init.uniform_(w, -0.05, 0.05)


@INITS.register("normal")
def normal(w: torch.Tensor) -> None:
    """N(0, 0.05^2) (tf.keras RandomNormal defaults)."""
    nn.init.normal_(w, 0.0, 0.05)


@INITS.register("xavier")
def xavier(w: torch.Tensor) -> None:
    """Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    nn.init.xavier_uniform_(w)


@INITS.register("msra")
def msra(w: torch.Tensor) -> None:
    """He et al. (2015): N(0, 2 / fan_in) (Caffe's MSRAFiller, ReLU gain)."""
    nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")


def apply_init(model: nn.Module, name: str, scale: float = 1.0) -> nn.Module:
    """Re-initialise `model` in place with scheme `name` ('default' = leave it as built), then
    multiply every parameter by `scale` (e.g. 0.1: start near the saddle point at the origin,
    the LLb-SGD paper's Fig. 8)."""
    if name != "default":
        fn: Callable[[torch.Tensor], None] = INITS.get_checked(name, "model_args.init")
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, LAYERS):
                    fn(m.weight)
                    if m.bias is not None:
                        m.bias.zero_()
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model


CHOICES = ("default", *INITS)
