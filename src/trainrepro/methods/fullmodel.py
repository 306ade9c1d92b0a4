"""FullModel (MentorNet paper, Sec. 5.1): plain cross-entropy with weight decay, dropout and
data augmentation, all set in the `train` section (weight_decay, model_args.dropout, augment).
The MentorNet study sets model_args.dropout = 0.2 before the classifier (keep 0.8, the official
CifarNet baseline; the paper names dropout without a rate) for every method, since Sec. 5.1 uses
the same StudentNet in all baselines; the official resnet has none (dropout 0.0 = that reading).
It is also LGL's "Baseline" and the alternation paper's "SGD" reference (their own recipes)."""
from __future__ import annotations

from .base import Method, register


@register
class FullModel(Method):
    family = "fullmodel"
