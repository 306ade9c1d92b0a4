"""Alternation between weights and multi-layer supports (Huang, Kong, Lucey): hard-threshold
units, I- and B-alternation. For now: the paper's reported numbers and claims (paper.yaml,
claims.yaml)."""
from pathlib import Path

from ...registry import Paper, register_paper

PAPER = register_paper(Paper(
    name="alternation", title="Alternation (Huang, Kong, Lucey)",
    package=Path(__file__).parent))
