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
