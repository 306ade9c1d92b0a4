"""The CifarNet-like network that google/mentornet's code calls "inception" (its second
CIFAR StudentNet; Jiang et al., "MentorNet", ICML 2018, Table 2), after TF-slim's
cifarnet (itself after Krizhevsky's cuda-convnet CIFAR-10 net).

conv5x5-64, ReLU, max-pool 3x3/2, conv5x5-64, ReLU, max-pool 3x3/2, fc384, ReLU, fc192,
ReLU, dropout, fc K. Pools are padded like TF's "SAME" (32 -> 16 -> 8, 28 -> 14 -> 7);
slim's local response normalisation is omitted.
"""
from __future__ import annotations

from torch import Tensor, nn

from trainrepro.models._common import MODELS, check_common, check_rate, conv_out
from trainrepro.models._common import dropout as make_dropout


class CifarNet(nn.Module):
    """Two conv-pool layers, two fc layers, dropout and a Linear classifier."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, dropout: float):
        super().__init__()
        size = image_size
        for _ in range(2):
            size = conv_out(size, 3, 2, 1)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1),
            nn.Flatten(start_dim=1),
        )
        self.fc = nn.Sequential(nn.Linear(64 * size * size, 384), nn.ReLU(), nn.Linear(384, 192), nn.ReLU())
        self.dropout = make_dropout(dropout)
        self.classifier = nn.Linear(192, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.fc(self.features(x))))


@MODELS.register("cifarnet")
def cifarnet(num_classes: int, in_channels: int, image_size: int, dropout: float = 0.0) -> CifarNet:
    """MentorNet's "inception" StudentNet (CifarNet-like) for any square input size."""
    check_common("cifarnet", num_classes, in_channels, image_size)
    return CifarNet(num_classes, in_channels, image_size, check_rate("cifarnet", "dropout", dropout))
