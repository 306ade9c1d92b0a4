"""Alternation between weights and multi-layer supports (Huang, Kong, Lucey).

| module          | what                                                                 |
|-----------------|----------------------------------------------------------------------|
| `units`         | positive hard-thresholding eta*(q; beta) (Eq. 9), registered as the activation `ht_relu` |
| `masks`         | bit-packed example-wise supports, the batch mask of Eq. 41, mask context managers |
| `alternation`   | methods `ht_sgd`, `i_alt` (Sec. 4.1), `b_alt` (Sec. 4.2), `dsd` (Table 8 flow), MaskT |
| `study`         | lr chosen on validation, Fig. 3's iterations to SGD's final error, MaskT readings from run records |
| `overhead`      | step-cost ratios vs SGD timed in one process, interleaved (claim A9, the benchmark) |
| `report`        | Tables 2, 7, 8 in the paper's layout, HT vs ReLU, Fig. 3, claim scalars (reports/alternation.ipynb) |

Reported numbers and claims: paper.yaml, claims.yaml.
"""
from __future__ import annotations

from pathlib import Path

from ...registry import Paper, deferred, register_paper
from . import alternation, masks, units  # noqa: F401  (register the activation and the methods)

PAPER = register_paper(Paper(
    name="alternation", title="Alternation (Huang, Kong, Lucey)",
    package=Path(__file__).resolve().parent,
    headline_cells={"sgd": {"method": "sgd"}, "i_alt": {"method": "i_alt"},
                    "b_alt_gate": {"method": "b_alt_gate"}},
    claim_scalars=deferred(f"{__name__}.study", "claim_scalars"),
    write_tables=deferred(f"{__name__}.report", "write_tables"),  # Tables 2, 7, 8 in its layout
    select_runs=deferred(f"{__name__}.study", "selected_runs")))  # the grid lr chosen on validation
