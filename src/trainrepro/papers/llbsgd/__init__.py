"""LLb-SGD (Zheng, Tian, Jiang, Yang, 2019): layer-wise learning-rate SGD. The published update
equations are lost; what is built here is a labelled *reconstruction* (../shared/REFERENCE.md s.3).

- `optimizer`  the `llbsgd` optimizer (reconstruction; every guess a parameter)
- `study`      method family `opt_trace` (loss / rate traces, weight trajectories for Fig. 8)
- `analysis`   stopping rule, iterations to target, speed-up, PCA; the study's analysis
- `params`     the `llbsgd:` section of params.yaml
- `report`     Tables 2-4 in the paper's layout (reports/llbsgd.ipynb draws Figs. 5-8)
- `paper.yaml`, `claims.yaml`  what the paper reports (no table cell is readable) and claims B1-B11
Path-SGD and ESGD, the paper's comparators, are core optimizers (optim/pathsgd.py, optim/esgd.py).
"""
from __future__ import annotations

from pathlib import Path

from ...registry import Paper, deferred, register_paper
from . import optimizer, study  # noqa: F401  (register the llbsgd optimizer and opt_trace)
from .params import validate

PAPER = register_paper(Paper(
    name="llbsgd",
    title="LLb-SGD (Zheng et al., 2019) — *reconstruction*: the paper's equations are lost",
    package=Path(__file__).resolve().parent,
    sections={"llbsgd": validate},
    headline=deferred(f"{__name__}.report", "headline"),
    write_tables=deferred(f"{__name__}.report", "write_tables")))
