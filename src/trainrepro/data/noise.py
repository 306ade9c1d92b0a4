"""Label-noise models. Convention: T[i, j] = P(noisy label = j | true label = i); every model
is defined by its transition matrix and applied by sampling each label from its row.

- `symmetric_incl`: with probability p the label is replaced by a class drawn uniformly from
  all K classes, the true one included (MentorNet paper: "changed to a uniform random class");
  the expected wrong-label rate is p (1 - 1/K).
- `symmetric_excl`: with probability p the label becomes a uniformly drawn *other* class;
  the expected wrong-label rate is p.
- `pair_flip`: with probability p the label c becomes (c + 1) mod K.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..registry import ConfigError, Registry

NOISE_MODELS = Registry("noise model")


@dataclass(frozen=True)
class NoiseModel(ABC):
    rate: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"noise rate must be in [0, 1], got {self.rate}")

    @abstractmethod
    def transition_matrix(self, num_classes: int) -> np.ndarray:
        """T[i, j] = P(noisy = j | true = i)."""

    def expected_wrong_rate(self, num_classes: int) -> float:
        t = self.transition_matrix(num_classes)
        return float(1.0 - np.trace(t) / num_classes)

    def apply(self, labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
        """Noisy copy of `labels`, drawn with its own generator (seed independent of training)."""
        t = self.transition_matrix(num_classes)
        rng = np.random.default_rng(seed)
        u = rng.random(len(labels))
        cdf = np.cumsum(t, axis=1)[labels]
        cdf[:, -1] = 1.0  # guard against rounding
        return (u[:, None] >= cdf).sum(axis=1).astype(labels.dtype)


@NOISE_MODELS.register("symmetric_incl")
class SymmetricInclusive(NoiseModel):
    def transition_matrix(self, num_classes: int) -> np.ndarray:
        k, p = num_classes, self.rate
        return (1 - p) * np.eye(k) + p / k * np.ones((k, k))


@NOISE_MODELS.register("symmetric_excl")
class SymmetricExclusive(NoiseModel):
    def transition_matrix(self, num_classes: int) -> np.ndarray:
        k, p = num_classes, self.rate
        return (1 - p) * np.eye(k) + p / (k - 1) * (np.ones((k, k)) - np.eye(k))


@NOISE_MODELS.register("pair_flip")
class PairFlip(NoiseModel):
    def transition_matrix(self, num_classes: int) -> np.ndarray:
        k, p = num_classes, self.rate
        return (1 - p) * np.eye(k) + p * np.roll(np.eye(k), 1, axis=1)


def empirical_transition(true: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """Row-normalised confusion of noisy against true labels (rows: true class)."""
    m = np.zeros((num_classes, num_classes))
    np.add.at(m, (true, noisy), 1)
    return m / np.maximum(m.sum(axis=1, keepdims=True), 1)


def noise_id(kind: str, rate: float, seed: int) -> str:
    """File-name id of a noise variant; every rate-0 variant is the same clean labelling."""
    return "clean" if rate == 0 else f"{kind}-{rate:g}-s{seed}"


def make_noise(kind: str, rate: float) -> NoiseModel:
    return NOISE_MODELS.get_checked(kind, "noise.kind")(rate)
