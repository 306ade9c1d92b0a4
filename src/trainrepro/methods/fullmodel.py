"""FullModel (MentorNet paper, Sec. 5.1): plain cross-entropy with weight decay, dropout and
data augmentation, all set in the `train` section (weight_decay, model_args.dropout, augment).
It is also LGL's "Baseline" and the alternation paper's "SGD" reference."""
from __future__ import annotations

from .base import Method, register


@register
class FullModel(Method):
    family = "fullmodel"
