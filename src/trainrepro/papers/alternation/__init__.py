"""Alternation between weights and multi-layer supports (Huang, Kong, Lucey).

| module          | what                                                                 |
|-----------------|----------------------------------------------------------------------|
| `units`         | positive hard-thresholding eta*(q; beta) (Eq. 9), registered as the activation `ht_relu` |
| `masks`         | bit-packed example-wise supports, the batch mask of Eq. 41, mask context managers |
| `alternation`   | methods `i_alt` (Sec. 4.1), `b_alt` (Sec. 4.2), `dsd` (Table 8 flow), MaskT readings |

Reported numbers and claims: paper.yaml, claims.yaml.
"""
from pathlib import Path

from ...registry import Paper, register_paper
from . import alternation, masks, units  # noqa: F401  (register the activation and the methods)

PAPER = register_paper(Paper(
    name="alternation", title="Alternation (Huang, Kong, Lucey)",
    package=Path(__file__).parent))
