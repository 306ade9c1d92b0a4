"""MentorNet (Jiang et al., ICML 2018): everything this reproduction has of the paper.

- `spade`       Algorithm 1 (SPADE) as the method family `mentornet`, and the DD burn-in
                StudentNet that records the mentor's training features (`mentornet_record`)
- `baselines`   Table 2-3 baselines: Forgetting, Self-paced (Kumar), Focal (Eq. 8), Reed
                soft/hard, Goldberger
- `net`         the MentorNet of Fig. 1, saved as weights + config (torch.load(weights_only=True))
- `curriculum`  the predefined curriculum of Eq. 5/7, the loss moving average lambda, epoch %
- `fit`         fitting a mentor: PD (MSE to Eq. 7 targets on a grid), DD (BCE to v* = 1[clean])
- `surface`     the learned curriculum surface (Fig. 4), the Proposition-1 metric, rho (Fig. 2)
- `settings`    the `mentor:` section of params.yaml (validated before any work)
- `stage`       the `mentor` DVC stage (burn-in, Forgetting pilots, PD / DD fits)
- `outputs`     where that stage writes and how train-stage runs read their entry
- `report`      Tables 2-3 in the paper's layout, Figs. 2-4 (reports/mentornet.ipynb)
- `paper.yaml`, `claims.yaml`  the paper's reported numbers and claims M1-M12
"""
from __future__ import annotations

from pathlib import Path

from ...registry import Paper, deferred, register_paper
from . import baselines, spade  # noqa: F401  (register the method families)
from .settings import validate_mentor

PAPER = register_paper(Paper(
    name="mentornet",
    title="MentorNet (Jiang et al., ICML 2018)",
    package=Path(__file__).resolve().parent,
    sections={"mentor": validate_mentor},
    headline_cells={"fullmodel_noise0.4": {"method": "fullmodel", "noise": 0.4},
                    "mentornet_dd_noise0.4": {"method": "mentornet_dd", "noise": 0.4},
                    "mentornet_pd_noise0.4": {"method": "mentornet_pd", "noise": 0.4}},
    write_tables=deferred(f"{__name__}.report", "write_tables")))  # Tables 2-3 in its layout
