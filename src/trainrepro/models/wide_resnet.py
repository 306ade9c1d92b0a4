"""The wide pre-activation ResNet that google/mentornet's code calls "resnet-101"
(its StudentNet for CIFAR; Jiang et al., "MentorNet", ICML 2018, Table 2).

Written after the TensorFlow models' CIFAR ResNet it builds on (He et al., "Identity
Mappings in Deep Residual Networks", ECCV 2016; widened as in Zagoruyko & Komodakis,
"Wide Residual Networks", BMVC 2016): a 3x3 stem conv to 16 channels, three stages of
pre-activation basic blocks (BN, leaky ReLU 0.1, conv3x3) with widths 160/320/640 and
strides 1/2/2, parameter-free shortcuts (stride-sized average pooling plus zero-padding
of the new channels), a final BN + leaky ReLU, global average pooling and one Linear.
The first block of the first stage activates before splitting off the shortcut.
Init as in that code: convs N(0, 2 / (k*k*out)), Linear U(+-sqrt(3 / fan_in)).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from trainrepro.models._common import (
    MODELS,
    check_common,
    check_int_list,
    check_positive,
    check_rate,
)
from trainrepro.models._common import (
    dropout as make_dropout,
)

LEAKINESS = 0.1


class PreActBlock(nn.Module):
    """BN-LReLU-conv3x3-BN-LReLU-conv3x3 with a pooled, zero-padded identity shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, activate_before_residual: bool):
        super().__init__()
        self.activate_before_residual = activate_before_residual
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = nn.LeakyReLU(LEAKINESS)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = nn.LeakyReLU(LEAKINESS)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.stride = stride
        self.pad = cout - cin

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = F.avg_pool2d(x, self.stride, self.stride)
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        pre = self.act1(self.bn1(x))
        residual = pre if self.activate_before_residual else x
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return out + self.shortcut(residual)


class WideResNet(nn.Module):
    """Stem conv, len(widths) stages of `blocks_per_stage` PreActBlocks, BN-LReLU, pool, Linear."""

    def __init__(self, num_classes: int, in_channels: int, blocks_per_stage: int, widths: Sequence[int],
                 stem_width: int, dropout: float):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, stem_width, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        cin = stem_width
        for i, cout in enumerate(widths):
            for j in range(blocks_per_stage):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(PreActBlock(cin, cout, stride, activate_before_residual=(i == 0 and j == 0)))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.BatchNorm2d(cin), nn.LeakyReLU(LEAKINESS), nn.AdaptiveAvgPool2d(1), nn.Flatten(start_dim=1)
        )
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        bound = math.sqrt(3.0 / cin)
        nn.init.uniform_(self.classifier.weight, -bound, bound)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.head(self.blocks(self.stem(x)))))


@MODELS.register("wide_resnet_mentornet")
def wide_resnet_mentornet(
    num_classes: int,
    in_channels: int,
    image_size: int,
    dropout: float = 0.0,
    blocks_per_stage: int = 9,
    widths: Sequence[int] = (160, 320, 640),
    stem_width: int = 16,
) -> WideResNet:
    """MentorNet's "resnet-101" StudentNet: wide pre-activation ResNet, leaky ReLU 0.1."""
    name = "wide_resnet_mentornet"
    check_common(name, num_classes, in_channels, image_size)
    return WideResNet(
        num_classes,
        in_channels,
        check_positive(name, "blocks_per_stage", blocks_per_stage),
        check_int_list(name, "widths", widths),
        check_positive(name, "stem_width", stem_width),
        check_rate(name, "dropout", dropout),
    )
