"""Local-to-Global Learning studies beyond plain training runs: the toy Gaussian study (Fig. 2),
the conditional-entropy ranking (Table 2) and compute accounting (Sec. 4.3).

Kept import-light: `params` is imported by the method registry to register the `lgl_toy` and
`lgl_analysis` sections of params.yaml; `toy` and `analysis` import torch / pandas lazily.
"""
