"""Small models for the toy and quick-profile studies.

- `mlp`: fully connected ReLU network; the LGL paper's toy study (Cheng et al., 2019,
  Sec. 4.1) uses FC nets with 1 and 3 hidden layers on 2-D Gaussian clusters.
- `small_cnn`: a two-conv LeNet-style CNN of our own for 8x8 (sklearn digits) and 28x28
  grayscale images, sized to train in milliseconds per batch on a CPU.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from trainrepro.models._common import (
    MODELS,
    check_common,
    check_int_list,
    check_positive,
    check_rate,
    conv_out,
)
from trainrepro.models._common import (
    dropout as make_dropout,
)


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] * len(hidden) -> dropout -> Linear classifier."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(start_dim=1)]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.features = nn.Sequential(*layers)
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.features(x)))


@MODELS.register("mlp")
def mlp(
    num_classes: int,
    in_channels: int,
    image_size: int,
    hidden: Sequence[int] = (128,),
    dropout: float = 0.0,
) -> MLP:
    """Fully connected ReLU net on flattened input of in_channels * image_size**2 features."""
    check_common("mlp", num_classes, in_channels, image_size)
    hidden = check_int_list("mlp", "hidden", hidden)
    return MLP(in_channels * image_size * image_size, num_classes, hidden, check_rate("mlp", "dropout", dropout))


class SmallCNN(nn.Module):
    """conv3x3-w, ReLU, pool, conv3x3-2w, ReLU, pool, fc-4w, ReLU, dropout, fc-K."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, width: int, dropout: float):
        super().__init__()
        size = image_size
        layers: list[nn.Module] = []
        channels = in_channels
        for out in (width, 2 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
            if size >= 2:  # tiny inputs (e.g. 2x2 after one pool) keep their last pixels
                layers.append(nn.MaxPool2d(2))
                size = conv_out(size, 2, 2)
            channels = out
        self.features = nn.Sequential(*layers, nn.Flatten(start_dim=1))
        self.fc = nn.Sequential(nn.Linear(channels * size * size, 4 * width), nn.ReLU())
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.fc(self.features(x))))


@MODELS.register("small_cnn")
def small_cnn(
    num_classes: int,
    in_channels: int,
    image_size: int,
    width: int = 32,
    dropout: float = 0.0,
) -> SmallCNN:
    """Two-conv CNN for 8x8 and 28x28 grayscale (any square size works)."""
    check_common("small_cnn", num_classes, in_channels, image_size)
    return SmallCNN(
        num_classes,
        in_channels,
        image_size,
        check_positive("small_cnn", "width", width),
        check_rate("small_cnn", "dropout", dropout),
    )
