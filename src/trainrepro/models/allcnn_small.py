"""A small all-convolutional network in the ALL-CNN style for tiny inputs (8x8 digits).

The registry's allcnn_a/b/c keep Springenberg et al.'s widths (96, 192) and need images of at
least 9x9 (their 3x3 valid conv follows two stride-2 convs). `allcnn_small_a/b/c` keep the layer
pattern of ALL-CNN-A, -B or -C (allcnn._STAGES: stride-2 convs instead of pooling, ReLU as the
only nonlinearity, 1x1 convs, a 1x1 conv to K classes, global average pooling) with widths
(`width`, 2 * `width`); the 3x3 conv after the second stage is "valid" when the map is at
least 5x5 and padded otherwise (8x8 input: 8 -> 4 -> 2 -> 2). Weights start from He-normal
init, biases from zero (torch's default init leaves this 9-layer plain net at chance with SGD).
"""
from __future__ import annotations

from torch import Tensor, nn

from trainrepro.models._common import MODELS, check_common, check_positive, check_rate, conv_out
from trainrepro.models._common import dropout as make_dropout
from trainrepro.models.allcnn import _STAGES
from trainrepro.registry import ConfigError


class AllCNNSmall(nn.Module):
    """ALL-CNN pattern `variant` at widths (width, 2 width); `classifier` is the last 1x1 conv."""

    def __init__(self, variant: str, num_classes: int, in_channels: int, image_size: int,
                 width: int, input_dropout: float, hidden_dropout: float, dropout: float):
        super().__init__()
        layers: list[nn.Module] = [make_dropout(input_dropout)]
        cin, size = in_channels, image_size
        for w, stage in zip((width, 2 * width), _STAGES[variant]):
            for kernel, stride in stage:
                layers += [nn.Conv2d(cin, w, kernel, stride=stride, padding=kernel // 2), nn.ReLU()]
                cin, size = w, conv_out(size, kernel, stride, kernel // 2)
            layers.append(make_dropout(hidden_dropout))
        pad = 0 if size >= 5 else 1
        layers += [nn.Conv2d(cin, cin, 3, padding=pad), nn.ReLU(), nn.Conv2d(cin, cin, 1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Conv2d(cin, num_classes, 1)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(start_dim=1))
        for m in self.modules():  # He init: torch's default init makes this plain net untrainable
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.classifier(self.dropout(self.features(x))))


def _build(variant: str, num_classes: int, in_channels: int, image_size: int, width: int,
           input_dropout: float, hidden_dropout: float, dropout: float) -> AllCNNSmall:
    name = f"allcnn_small_{variant}"
    check_common(name, num_classes, in_channels, image_size)
    if image_size < 4:
        raise ConfigError(f"model {name!r}: image_size {image_size} too small (needs >= 4)")
    return AllCNNSmall(variant, num_classes, in_channels, image_size,
                       check_positive(name, "width", width),
                       check_rate(name, "input_dropout", input_dropout),
                       check_rate(name, "hidden_dropout", hidden_dropout),
                       check_rate(name, "dropout", dropout))


@MODELS.register("allcnn_small_a")
def allcnn_small_a(num_classes: int, in_channels: int, image_size: int, width: int = 16,
                   input_dropout: float = 0.0, hidden_dropout: float = 0.0,
                   dropout: float = 0.0) -> AllCNNSmall:
    """ALL-CNN-A pattern (5x5 convs, each followed by a 3x3 stride-2 conv), widths (w, 2w)."""
    return _build("a", num_classes, in_channels, image_size, width, input_dropout, hidden_dropout, dropout)


@MODELS.register("allcnn_small_b")
def allcnn_small_b(num_classes: int, in_channels: int, image_size: int, width: int = 16,
                   input_dropout: float = 0.0, hidden_dropout: float = 0.0,
                   dropout: float = 0.0) -> AllCNNSmall:
    """ALL-CNN-B pattern (A with a 1x1 conv after each 5x5 conv), widths (w, 2w)."""
    return _build("b", num_classes, in_channels, image_size, width, input_dropout, hidden_dropout, dropout)


@MODELS.register("allcnn_small_c")
def allcnn_small_c(num_classes: int, in_channels: int, image_size: int, width: int = 16,
                   input_dropout: float = 0.0, hidden_dropout: float = 0.0,
                   dropout: float = 0.0) -> AllCNNSmall:
    """ALL-CNN-C pattern (two 3x3 convs then a 3x3 stride-2 conv per stage), widths (w, 2w)."""
    return _build("c", num_classes, in_channels, image_size, width, input_dropout, hidden_dropout, dropout)
