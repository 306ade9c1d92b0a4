"""Local-to-Global Learning (Cheng et al., CVPR 2019): everything this reproduction has of it.

- `method`    LGL (Algorithm 1, strategies r / d / s) and the compute-matched baseline
- `params`    the `lgl_toy:` and `lgl_analysis:` sections of params.yaml
- `toy`       the toy Gaussian study (Sec. 5.1, Fig. 2), the `lgl_toy` DVC stage
- `analysis`  the conditional-entropy ranking (Table 2) and compute accounting (Sec. 4.3)
- `report`    Tables 1-3 in the paper's layout, Figs. 2-3 (reports/lgl.ipynb)
- `paper.yaml`, `claims.yaml`  the paper's reported numbers and claims L1-L14
SPL / SPL_INV / SPLD, LGL's baselines, are the shared self-paced family in methods/spl.py.
"""
from __future__ import annotations

from pathlib import Path

from ...registry import Paper, deferred, register_paper
from . import method  # noqa: F401  (registers lgl, baseline_matched)
from .params import validate_analysis, validate_toy

PAPER = register_paper(Paper(
    name="lgl",
    title="Local-to-Global Learning (Cheng et al., CVPR 2019)",
    package=Path(__file__).resolve().parent,
    sections={"lgl_toy": validate_toy, "lgl_analysis": validate_analysis},
    headline_cells={"baseline": {"method": "baseline"}, "lgl_r3": {"method": "lgl_r3"},
                    "spl": {"method": "spl"}},
    write_tables=deferred(f"{__name__}.report", "write_tables")))  # Tables 1-3 in its layout
