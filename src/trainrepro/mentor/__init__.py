"""MentorNet (Jiang et al., ICML 2018): the mentor network, its curricula and how it is fitted.

- `net`         the MentorNet of Fig. 1, saved as weights + config (torch.load(weights_only=True))
- `curriculum`  the predefined curriculum of Eq. 5/7, the loss moving average lambda, epoch %
- `fit`         fitting a mentor: PD (MSE to Eq. 7 targets on a grid), DD (BCE to v* = 1[clean])
- `surface`     the learned curriculum surface (Fig. 4), the Proposition-1 metric, rho (Fig. 2)
- `settings`    the `mentor:` section of params.yaml (validated before any work)
The training side (SPADE, Algorithm 1) is the method family `mentornet` in methods/mentornet.py.
"""
from pathlib import Path
from typing import Any

from . import settings as _settings  # registers the `mentor:` params section validator  # noqa: F401
from .curriculum import PercentileEMA, epoch_percent, pd_targets, pd_weight
from .net import MentorNet, load_mentor, save_mentor

MENTOR_ROOT = "mentors"  # under the results root: results/mentors (written by the mentor stage)


def stage_entry(results_root: str | Path, filename: str, cell: str) -> dict[str, Any]:
    """A cell's entry in one of the mentor stage's tables (assignments.json: the cell's mentor
    file and sha256; forgetting_selection.json: its validated dropout rate)."""
    from ..io import read_json
    from ..registry import ConfigError

    path = Path(results_root) / MENTOR_ROOT / filename
    if not path.exists():
        raise ConfigError(f"{path}: missing; run the mentor stage first (python stages/mentor.py)")
    table = read_json(path)
    if cell not in table:
        raise ConfigError(f"{path}: no entry for cell {cell!r}; re-run the mentor stage")
    return table[cell]


__all__ = ["MENTOR_ROOT", "stage_entry", "MentorNet", "load_mentor", "save_mentor", "PercentileEMA", "epoch_percent",
           "pd_targets", "pd_weight"]
