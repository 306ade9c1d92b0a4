"""VGG-16 for CIFAR in the style of kuangliu/pytorch-cifar (Simonyan & Zisserman, 2015,
configuration D), as used by the LGL paper and its official code.

13 conv3x3-BN-ReLU layers with five 2x2 max-pools, then one Linear(512, K) (no fc
hidden layers; conv biases kept as in kuangliu, 14.73M parameters at K = 10). At 32x32 the features end at 1x1. For smaller inputs a pool is skipped
once the map is 1x1 (kuangliu's net only accepts 32x32).
"""
from __future__ import annotations

from torch import Tensor, nn

from trainrepro.models._common import MODELS, check_common, check_positive, check_rate
from trainrepro.models._common import dropout as make_dropout

_CFG_VGG16: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """Conv-BN-ReLU stack from `cfg` ("M" = max-pool), global average, Linear classifier."""

    def __init__(self, cfg: list[int | str], num_classes: int, in_channels: int, image_size: int,
                 width_divisor: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        cin, size = in_channels, image_size
        for item in cfg:
            if item == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2, 2))
                    size //= 2
                continue
            cout = max(1, int(item) // width_divisor)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(start_dim=1))
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.features(x)))


@MODELS.register("vgg16")
def vgg16(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0,
          width_divisor: int = 1) -> VGG:
    """CIFAR VGG-16 with BN (width_divisor > 1 shrinks every layer, for tests and quick runs)."""
    check_common("vgg16", num_classes, in_channels, image_size)
    return VGG(_CFG_VGG16, num_classes, in_channels, image_size,
               check_positive("vgg16", "width_divisor", width_divisor), check_rate("vgg16", "dropout", dropout))
