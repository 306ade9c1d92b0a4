"""Helpers shared by curriculum-style methods (LGL, SPL / SPL_INV / SPLD, self-paced weighting).

Everything here scores the *current* model in eval mode without gradients (`TrainerView.predict`),
so a method can rank samples or classes between epochs without touching the training step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

if TYPE_CHECKING:  # pragma: no cover
    from .base import TrainerView


@torch.no_grad()
def per_sample_loss(trainer: "TrainerView", indices: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each pool index against the labels the learner sees (eval mode)."""
    logits = trainer.predict(indices, int(trainer.cfg.get("eval_batch_size", 1024)))
    return F.cross_entropy(logits, trainer.data.noisy[indices], reduction="none")


def entropy_rows(probs: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_t p_t log p_t of every row (0 log 0 = 0)."""
    return -(probs * torch.log(probs.clamp_min(1e-30))).sum(dim=1)


def conditional_entropy(logits: torch.Tensor, trained: Sequence[int]) -> torch.Tensor:
    """H_w(T|X) of LGL Eq. 7-8: T = softmax restricted to the trained classes, p(x) = 1/M.

    logits: (M, K) outputs for the M samples of one cluster; returns a 0-d tensor."""
    cols = torch.as_tensor(list(trained), dtype=torch.long, device=logits.device)
    probs = torch.softmax(logits.float()[:, cols], dim=1)
    return entropy_rows(probs).mean()


@torch.no_grad()
def class_conditional_entropy(trainer: "TrainerView", candidates: Sequence[int],
                              trained: Sequence[int]) -> dict[int, float]:
    """H_w(T|X_{i}) for every candidate class i over its training images (LGL Eq. 7-9)."""
    data = trainer.data
    train_labels = data.noisy[data.train_idx]
    out: dict[int, float] = {}
    for c in candidates:
        idx = data.train_idx[train_labels == int(c)]
        if len(idx) == 0:
            out[int(c)] = float("nan")
            continue
        logits = trainer.predict(idx, int(trainer.cfg.get("eval_batch_size", 1024)))
        out[int(c)] = float(conditional_entropy(logits, trained))
    return out


def train_indices_of_classes(trainer: "TrainerView", classes: Sequence[int]) -> torch.Tensor:
    """Pool indices of the training split whose (noisy, learner-visible) label is in `classes`."""
    data = trainer.data
    cls = torch.as_tensor(list(classes), dtype=torch.long, device=data.train_idx.device)
    mask = torch.isin(data.noisy[data.train_idx], cls)
    return data.train_idx[mask]


class Plateau:
    """Fires when a per-epoch loss has stopped decreasing (alternation: re-estimate the masks).

    Fed one value per epoch since the last reset. Fires after epoch k of the phase (k = number
    of values seen) when k >= max_gap, or when k >= min_gap and the best value has not improved
    by more than `min_delta` (relative) for `patience` epochs. State is plain numbers
    (`state_dict` / `load_state_dict`) so a resumed run fires at the same epoch."""

    def __init__(self, patience: int, min_gap: int, max_gap: int, min_delta: float = 0.0):
        if not 1 <= min_gap <= max_gap or patience < 1:
            raise ValueError(f"plateau rule needs 1 <= min_gap <= max_gap and patience >= 1, got "
                             f"min_gap={min_gap}, max_gap={max_gap}, patience={patience}")
        self.patience, self.min_gap, self.max_gap = int(patience), int(min_gap), int(max_gap)
        self.min_delta = float(min_delta)
        self.reset()

    def reset(self) -> None:
        self.seen = 0
        self.best = float("inf")
        self.since_best = 0

    def update(self, value: float) -> bool:
        """Add this epoch's value; True when the phase should end now."""
        self.seen += 1
        if value < self.best - self.min_delta * abs(self.best if self.best != float("inf") else 0.0):
            self.best, self.since_best = float(value), 0
        else:
            self.since_best += 1
        if self.seen >= self.max_gap:
            return True
        return self.seen >= self.min_gap and self.since_best >= self.patience

    def state_dict(self) -> dict[str, float]:
        return {"seen": self.seen, "best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.seen, self.best = int(state["seen"]), float(state["best"])
        self.since_best = int(state["since_best"])
