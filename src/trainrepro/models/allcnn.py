"""ALL-CNN-A/B/C: Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity:
The All Convolutional Net", ICLR workshop 2015 (Tables 1 and 2), as used by the
alternation paper (Tables 2-4).

Max-pooling is replaced by 3x3 stride-2 convolutions; a 3x3 "valid" conv, a 1x1 conv
and a final 1x1 conv to K channels are followed by global average pooling (8x8 -> 6x6
for 32x32 input). Dropout 0.2 on the input and 0.5 after each stride-2 layer.
Divergence: the paper also puts a ReLU on the K class maps; we leave the logits linear
(a ReLU there clips negative logits and would be swapped by the hard-threshold method).
Parameter counts (K = 10, RGB): A 1.25M, B 1.30M, C 1.37M (paper: 1.28M/1.35M/1.4M).
"""
from __future__ import annotations

from torch import Tensor, nn

from trainrepro.models._common import MODELS, check_common, check_rate, conv_out
from trainrepro.models._common import dropout as make_dropout
from trainrepro.registry import ConfigError

# One stage = list of (kernel, stride); the last layer of a stage is the stride-2 one.
_STAGES: dict[str, list[list[tuple[int, int]]]] = {
    "a": [[(5, 1), (3, 2)], [(5, 1), (3, 2)]],
    "b": [[(5, 1), (1, 1), (3, 2)], [(5, 1), (1, 1), (3, 2)]],
    "c": [[(3, 1), (3, 1), (3, 2)], [(3, 1), (3, 1), (3, 2)]],
}
_STAGE_WIDTHS = (96, 192)


def _conv_block(cin: int, cout: int, kernel: int, stride: int, padding: int, batchnorm: bool) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=not batchnorm)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU()] if batchnorm else [conv, nn.ReLU()]


class AllCNN(nn.Module):
    """ALL-CNN variant `variant` in {"a", "b", "c"}; `classifier` is the final 1x1 conv."""

    def __init__(
        self,
        variant: str,
        num_classes: int,
        in_channels: int,
        image_size: int,
        dropout: float,
        input_dropout: float,
        hidden_dropout: float,
        batchnorm: bool,
    ):
        super().__init__()
        layers: list[nn.Module] = [make_dropout(input_dropout)]
        cin, size = in_channels, image_size
        for widths, stage in zip(_STAGE_WIDTHS, _STAGES[variant]):
            for kernel, stride in stage:
                layers += _conv_block(cin, widths, kernel, stride, kernel // 2, batchnorm)
                cin, size = widths, conv_out(size, kernel, stride, kernel // 2)
            layers.append(make_dropout(hidden_dropout))
        if size < 3:
            raise ConfigError(
                f"model 'allcnn_{variant}': image_size {image_size} too small "
                f"(needs >= 9 so the 3x3 valid conv sees at least 3x3)"
            )
        layers += _conv_block(cin, 192, 3, 1, 0, batchnorm)  # valid: 8x8 -> 6x6 at 32x32
        layers += _conv_block(192, 192, 1, 1, 0, batchnorm)
        self.features = nn.Sequential(*layers)
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Conv2d(192, num_classes, 1)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(start_dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.classifier(self.dropout(self.features(x))))


def _build(variant: str, num_classes: int, in_channels: int, image_size: int, dropout: float,
           input_dropout: float, hidden_dropout: float, batchnorm: bool) -> AllCNN:
    name = f"allcnn_{variant}"
    check_common(name, num_classes, in_channels, image_size)
    if not isinstance(batchnorm, bool):
        raise ConfigError(f"model {name!r}: batchnorm must be true or false, got {batchnorm!r}")
    return AllCNN(
        variant, num_classes, in_channels, image_size,
        check_rate(name, "dropout", dropout),
        check_rate(name, "input_dropout", input_dropout),
        check_rate(name, "hidden_dropout", hidden_dropout),
        batchnorm,
    )


@MODELS.register("allcnn_a")
def allcnn_a(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0,
             input_dropout: float = 0.2, hidden_dropout: float = 0.5, batchnorm: bool = False) -> AllCNN:
    """ALL-CNN-A: 5x5 convs (96, 192), each followed by a 3x3 stride-2 conv."""
    return _build("a", num_classes, in_channels, image_size, dropout, input_dropout, hidden_dropout, batchnorm)


@MODELS.register("allcnn_b")
def allcnn_b(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0,
             input_dropout: float = 0.2, hidden_dropout: float = 0.5, batchnorm: bool = False) -> AllCNN:
    """ALL-CNN-B: like A with a 1x1 conv after each 5x5 conv."""
    return _build("b", num_classes, in_channels, image_size, dropout, input_dropout, hidden_dropout, batchnorm)


@MODELS.register("allcnn_c")
def allcnn_c(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0,
             input_dropout: float = 0.2, hidden_dropout: float = 0.5, batchnorm: bool = False) -> AllCNN:
    """ALL-CNN-C: two 3x3 convs then a 3x3 stride-2 conv per stage (96, 192)."""
    return _build("c", num_classes, in_channels, image_size, dropout, input_dropout, hidden_dropout, batchnorm)
