"""LLb-SGD (Zheng, Tian, Jiang, Yang, 2019): layer-wise learning-rate SGD. The published update
equations are lost; what is built here is a labelled *reconstruction* (../shared/REFERENCE.md s.3):
the optimizer `llbsgd` (optimizer.py), the study helpers (study.py) and its report code."""
from pathlib import Path

from ...registry import Paper, register_paper
from . import optimizer  # noqa: F401  (registers the `llbsgd` optimizer)

PAPER = register_paper(Paper(
    name="llbsgd",
    title="LLb-SGD (Zheng et al., 2019) — *reconstruction*: the paper's equations are lost",
    package=Path(__file__).parent))
