"""One package per reproduced paper; each registers itself in `registry.PAPERS` on import.

| package       | paper                                                         |
|---------------|---------------------------------------------------------------|
| `mentornet`   | MentorNet (Jiang et al., ICML 2018)                           |
| `lgl`         | Local-to-Global Learning (Cheng et al., CVPR 2019)            |
| `llbsgd`      | LLb-SGD (Zheng et al., 2019), a labelled reconstruction       |
| `alternation` | Alternation over weights and multi-layer supports (Huang, Kong, Lucey) |

A paper package holds the paper's own methods, study logic, stage entry points, report code,
and its reported numbers (`paper.yaml`) and claims (`claims.yaml`). The core (engine, data,
models, optim, methods, runner, config, results, report infrastructure) never imports one:
the stage scripts call `load_all()`, and a training worker imports only the module of its
run's method, so a run's code hash covers the one paper it runs (see `config.code_files`).
"""
from __future__ import annotations

import importlib

NAMES = ("mentornet", "lgl", "alternation", "llbsgd")


def load_all() -> None:
    """Import every paper package by name (each registers its methods, params sections,
    optimizers and report writers)."""
    for name in NAMES:
        importlib.import_module(f"{__name__}.{name}")
