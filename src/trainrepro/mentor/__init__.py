"""MentorNet (Jiang et al., ICML 2018): the mentor network, its curricula and how it is fitted.

- `net`         the MentorNet of Fig. 1, saved as weights + config (torch.load(weights_only=True))
- `curriculum`  the predefined curriculum of Eq. 5/7, the loss moving average lambda, epoch %
- `fit`         fitting a mentor: PD (MSE to Eq. 7 targets on a grid), DD (BCE to v* = 1[clean])
- `surface`     the learned curriculum surface (Fig. 4), the Proposition-1 metric, rho (Fig. 2)
- `settings`    the `mentor:` section of params.yaml (validated before any work)
The training side (SPADE, Algorithm 1) is the method family `mentornet` in methods/mentornet.py.
"""
from . import settings as _settings  # registers the `mentor:` params section validator  # noqa: F401
from .curriculum import PercentileEMA, epoch_percent, pd_targets, pd_weight
from .net import MentorNet, load_mentor, save_mentor

__all__ = ["MentorNet", "load_mentor", "save_mentor", "PercentileEMA", "epoch_percent",
           "pd_targets", "pd_weight"]
