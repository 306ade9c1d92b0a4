"""The ImageNet networks of the LLb-SGD paper (Sec. 5): AlexNet, VGG-16, GoogLeNet, ResNet-152,
built from torchvision.models with weights=None (random initialisation, nothing downloaded).

Each keeps the registry's conventions (models/__init__.py): `classifier` is torchvision's own final
Linear, moved out of the body (same parameters, same initialisation); every ReLU is its own
non-inplace module used once per forward (ResNet's shared `relu` and GoogLeNet's functional relu
are replaced by modules; no parameter changes, so the counts are torchvision's). Inputs are RGB
(in_channels 3), 224x224 in the paper; image_size >= 64 (AlexNet's feature map vanishes below).
GoogLeNet is built without its two auxiliary classifiers (aux_logits=False: the engine trains
on one output; the paper does not say whether it used them).

`dropout` (default 0) is the rate of torchvision's own dropout layers: AlexNet's and VGG-16's two
classifier dropouts (the original nets use 0.5), GoogLeNet's before its classifier (torchvision
0.2); ResNet-152 has none in torchvision, so there it is a dropout before the classifier.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace

import torch
from torch import nn

from trainrepro.models._common import MODELS, check_common, check_rate, dropout as dropout_layer
from trainrepro.registry import ConfigError

MIN_IMAGE_SIZE = 64


class TorchvisionNet(nn.Module):
    """body (a torchvision network whose final Linear is an Identity) -> dropout -> classifier."""

    def __init__(self, body: nn.Module, classifier: nn.Linear, p: float = 0.0):
        super().__init__()
        self.body = body
        self.dropout = dropout_layer(p)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.body(x)))


def _check(name: str, num_classes: int, in_channels: int, image_size: int, dropout: float) -> float:
    check_common(name, num_classes, in_channels, image_size)
    if in_channels != 3:
        raise ConfigError(f"model {name!r}: in_channels must be 3 (an RGB ImageNet network), got {in_channels}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"model {name!r}: image_size must be >= {MIN_IMAGE_SIZE} (224 in the paper), "
                          f"got {image_size}")
    return check_rate(name, "dropout", dropout)


def _split_last(body: nn.Module, container: str, index: int | None = None) -> tuple[nn.Module, nn.Linear]:
    """Move body.<container>[index] (or body.<container>) out of the body: (body, that Linear)."""
    if index is None:
        last = getattr(body, container)
        setattr(body, container, nn.Identity())
    else:
        last = getattr(body, container)[index]
        getattr(body, container)[index] = nn.Identity()
    return body, last


def _no_inplace(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return model


@functools.cache
def tv() -> SimpleNamespace:
    """torchvision.models and our two module-ReLU blocks, imported at the first ImageNet build:
    importing torchvision.models takes 1-7 s (measured on this 2-core machine), which every
    training process would otherwise pay although only the paper profile builds these nets."""
    import torchvision.models as models
    from torchvision.models.googlenet import BasicConv2d, GoogLeNet, Inception, InceptionAux
    from torchvision.models.resnet import Bottleneck, ResNet

    class ModuleReluConv(BasicConv2d):
        """GoogLeNet's conv-BN-ReLU with the ReLU as a (non-inplace) module instead of F.relu."""

        def __init__(self, in_channels: int, out_channels: int, **kwargs):
            super().__init__(in_channels, out_channels, **kwargs)
            self.relu = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.relu(self.bn(self.conv(x)))

    class ModuleReluBottleneck(Bottleneck):
        """ResNet's bottleneck with one ReLU module per use (torchvision's reuses `self.relu` 3x)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.relu, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu2(self.bn2(self.conv2(out)))
            return self.relu3(self.bn3(self.conv3(out)) + identity)

    return SimpleNamespace(alexnet=models.alexnet, vgg16=models.vgg16, GoogLeNet=GoogLeNet, Inception=Inception,
                           InceptionAux=InceptionAux, ResNet=ResNet, conv=ModuleReluConv,
                           bottleneck=ModuleReluBottleneck)


def _fc_head_net(name: str, ctor: str, num_classes: int, in_channels: int, image_size: int,
                 dropout: float) -> nn.Module:
    """AlexNet / VGG-16: torchvision's net with its last Linear (classifier[6]) as `classifier`."""
    p = _check(name, num_classes, in_channels, image_size, dropout)
    body = getattr(tv(), ctor)(weights=None, num_classes=num_classes, dropout=p)
    return TorchvisionNet(*_split_last(_no_inplace(body), "classifier", 6))


@MODELS.register("alexnet")
def alexnet(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
            dropout: float = 0.0) -> nn.Module:
    """torchvision AlexNet (Krizhevsky et al. 2012, one-tower variant), 224x224 RGB."""
    return _fc_head_net("alexnet", "alexnet", num_classes, in_channels, image_size, dropout)


@MODELS.register("vgg16_imagenet")
def vgg16_imagenet(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
                   dropout: float = 0.0) -> nn.Module:
    """torchvision VGG-16 (configuration D, no batch norm), 224x224 RGB (`vgg16` is the CIFAR one)."""
    return _fc_head_net("vgg16_imagenet", "vgg16", num_classes, in_channels, image_size, dropout)


@MODELS.register("googlenet")
def googlenet(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
              dropout: float = 0.0) -> nn.Module:
    """torchvision GoogLeNet (Inception v1, with batch norm), no auxiliary classifiers, 224x224 RGB."""
    p = _check("googlenet", num_classes, in_channels, image_size, dropout)
    t = tv()
    body = t.GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False, init_weights=True,
                       blocks=[t.conv, functools.partial(t.Inception, conv_block=t.conv),
                               functools.partial(t.InceptionAux, conv_block=t.conv)], dropout=p)
    body, fc = _split_last(body, "fc")
    body.dropout = nn.Identity()  # applied by TorchvisionNet, just before the classifier
    return TorchvisionNet(body, fc, p)


@MODELS.register("resnet152")
def resnet152(num_classes: int = 1000, in_channels: int = 3, image_size: int = 224,
              dropout: float = 0.0) -> nn.Module:
    """torchvision ResNet-152 (bottleneck blocks [3, 8, 36, 3], He et al. 2016), 224x224 RGB."""
    p = _check("resnet152", num_classes, in_channels, image_size, dropout)
    body = _no_inplace(tv().ResNet(tv().bottleneck, [3, 8, 36, 3], num_classes=num_classes))
    return TorchvisionNet(*_split_last(body, "fc"), p)
