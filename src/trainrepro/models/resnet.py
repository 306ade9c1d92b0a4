"""CIFAR ResNets in the style of kuangliu/pytorch-cifar (He, Zhang, Ren & Sun, "Deep
Residual Learning for Image Recognition", CVPR 2016, ImageNet widths 64-512), as used
for ResNet-34 in the LLb-SGD study.

3x3 stem conv (no max-pool), four stages of BasicBlocks (strides 1, 2, 2, 2), 1x1
conv + BN projection shortcuts where the shape changes, global average pooling and one
Linear. ResNet-50 uses Bottleneck blocks (1x1, 3x3, 1x1, expansion 4; stride on the 3x3) in
stages [3, 4, 6, 3]. At K = 10: ResNet-18 11.17M parameters, ResNet-34 21.28M, ResNet-50 23.52M.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from trainrepro.models._common import MODELS, check_common, check_positive, check_rate
from trainrepro.models._common import dropout as make_dropout


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU (one ReLU module per use)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.act2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1(x4)-BN, plus shortcut, then ReLU."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.act3 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))))
        return self.act3(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet; `blocks` per stage, stage widths width * (1, 2, 4, 8) (x4 for Bottleneck)."""

    def __init__(self, blocks: Sequence[int], num_classes: int, in_channels: int, width: int, dropout: float,
                 block: str = "basic"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers: list[nn.Module] = []
        cin = width
        for i, n in enumerate(blocks):
            planes = width * 2**i
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                if block == "bottleneck":
                    layers.append(Bottleneck(cin, planes, stride))
                    cin = planes * Bottleneck.expansion
                else:
                    layers.append(BasicBlock(cin, planes, stride))
                    cin = planes
        self.layers = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(start_dim=1))
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.pool(self.layers(self.stem(x)))))


def _resnet(name: str, blocks: Sequence[int], num_classes: int, in_channels: int, image_size: int,
            dropout: float, width: int, block: str = "basic") -> ResNet:
    check_common(name, num_classes, in_channels, image_size)
    return ResNet(blocks, num_classes, in_channels, check_positive(name, "width", width),
                  check_rate(name, "dropout", dropout), block)


@MODELS.register("resnet18")
def resnet18(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0, width: int = 64) -> ResNet:
    """CIFAR ResNet-18: BasicBlocks [2, 2, 2, 2] (width = first-stage channels)."""
    return _resnet("resnet18", (2, 2, 2, 2), num_classes, in_channels, image_size, dropout, width)


@MODELS.register("resnet34")
def resnet34(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0, width: int = 64) -> ResNet:
    """CIFAR ResNet-34: BasicBlocks [3, 4, 6, 3] (width = first-stage channels)."""
    return _resnet("resnet34", (3, 4, 6, 3), num_classes, in_channels, image_size, dropout, width)


@MODELS.register("resnet50")
def resnet50(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0, width: int = 64) -> ResNet:
    """CIFAR ResNet-50: Bottleneck blocks [3, 4, 6, 3], expansion 4 (width = first-stage planes)."""
    return _resnet("resnet50", (3, 4, 6, 3), num_classes, in_channels, image_size, dropout, width, "bottleneck")
