"""Network in Network: Lin, Chen & Yan, "Network In Network", ICLR 2014 (MNIST/SVHN
configuration), as used by the alternation paper (Tables 5-7).

Three mlpconv blocks (a 5x5 conv then two 1x1 convs): 96-64-48, max-pool 3x3/2,
dropout 0.5; 128-96-48, max-pool 3x3/2, dropout 0.5; 128-96-K, global average pooling.
Pools use Caffe's ceil mode (28 -> 14 -> 7, 32 -> 16 -> 8). Divergence: the Caffe model
puts a ReLU on the K class maps; we leave the logits linear (see allcnn.py).
"""
from __future__ import annotations

from torch import Tensor, nn

from trainrepro.models._common import MODELS, check_common, check_rate
from trainrepro.models._common import dropout as make_dropout
from trainrepro.registry import ConfigError

_BLOCKS = ((96, 64, 48), (128, 96, 48), (128, 96))


def _conv(cin: int, cout: int, kernel: int, batchnorm: bool) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=not batchnorm)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()] if batchnorm else [conv, nn.ReLU()]


class NIN(nn.Module):
    """Network in Network; `classifier` is the last 1x1 conv of the third mlpconv block."""

    def __init__(self, num_classes: int, in_channels: int, dropout: float, hidden_dropout: float, batchnorm: bool):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, widths in enumerate(_BLOCKS):
            for j, cout in enumerate(widths):
                layers += _conv(cin, cout, 5 if j == 0 else 1, batchnorm)
                cin = cout
            if i < 2:
                layers += [nn.MaxPool2d(3, stride=2, ceil_mode=True), make_dropout(hidden_dropout)]
        self.features = nn.Sequential(*layers)
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Conv2d(cin, num_classes, 1)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(start_dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.classifier(self.dropout(self.features(x))))


@MODELS.register("nin")
def nin(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0,
        hidden_dropout: float = 0.5, batchnorm: bool = False) -> NIN:
    """NIN for 28x28 / 32x32 input (needs image_size >= 5 for the two 3x3/2 pools)."""
    check_common("nin", num_classes, in_channels, image_size)
    if image_size < 5:
        raise ConfigError(f"model 'nin': image_size {image_size} too small (needs >= 5)")
    if not isinstance(batchnorm, bool):
        raise ConfigError(f"model 'nin': batchnorm must be true or false, got {batchnorm!r}")
    return NIN(num_classes, in_channels, check_rate("nin", "dropout", dropout),
               check_rate("nin", "hidden_dropout", hidden_dropout), batchnorm)
