"""The `mentor:` section of params.yaml: MentorNet sizes, how mentors are fitted, the PD
curriculum, the DD burn-in, the Forgetting dropout selection and the surface metric.

`mentor.profiles.<profile>` overrides any of these keys for one profile (deep merge), so
the quick profile can fit with fewer steps than the paper's 30,000.
"""
from __future__ import annotations

import copy
from typing import Any

from ...methods.base import check_value
from ...registry import ConfigError
from .curriculum import PD_DEFAULTS
from .net import NET_DEFAULTS, UNFITTED_EPOCHS

MENTOR_DEFAULTS: dict[str, Any] = {
    "study": "mentornet",          # the study whose mentornet / forgetting runs this stage serves
    "net": dict(NET_DEFAULTS),
    "fit": {                       # official code: batch 32, 30k steps, Adam lr 0.1 x0.9 / 1k steps, clip 5
        "batch_size": 32, "steps": 30000, "lr": 0.1, "lr_decay": 0.9, "lr_decay_steps": 1000,
        "grad_clip": 5.0, "seed": 0,
    },
    "pd": {**PD_DEFAULTS,           # MentorNet PD: fitted (MSE on the sigmoid) to Eq. 7 on a grid
           "grid_loss_max": 8.0, "grid_diff_max": 4.0, "grid_points": 65,  # x every epoch 0..99
           "fit": {}},              # overrides of `fit` for the PD mentor (keys of `fit`)
    "dd": {                        # MentorNet DD: the StudentNet burn-in that records features
        "per_seed": True,          # each run seed: its own noisy labels -> its own burn-in and
                                   # mentor (seeds derived from the run's); false = one mentor
                                   # per (dataset, StudentNet, noise rate): the first run seed's
                                   # noisy labels, burn-in seed `burn_in_seed`
        "burn_in_seed": 0,         # per_seed: offset added to the run seed; else the seed itself
        "record_fraction": 0.2,    # features of the first 20% of epochs = the paper's burn-in
                                   # period (Sec. 3.1); 1.0 = the whole schedule (old behaviour)
    },
    "forgetting": {                # Forgetting (Arpit et al.): dropout chosen by pilot runs
        "selection_seed": 1000,    # seed of the pilot runs (never an evaluation seed)
        # keep probabilities searched (Sec. 5.1: "the dropout parameter is searched in the range
        # of (0.2-0.9)"; Table 4 names it a keep probability); dropout rate = 1 - keep
        "keep_grid": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
    },
    "surface": {                   # Fig. 4 grid and the Proposition-1 metric
        "loss_max": 5.0, "diff_min": -3.0, "diff_max": 3.0, "points": 41,
        "epochs": [21, 76],        # the paper's Fig. 4 panels are at epochs 21 and 76
        "lambda_max": 3.0,         # Proposition 1 at fixed lambda: `points` lambdas in [0, max]
        "tolerance": 1.0e-3,
    },
    "profiles": {},
}
RANGES: dict[str, tuple] = {
    "net.label_embedding": (1, None), "net.num_labels": (1, None), "net.epoch_embedding": (1, None),
    "net.lstm_hidden": (1, None), "net.fc_hidden": (1, None),
    "fit.batch_size": (1, None), "fit.steps": (1, None), "fit.lr": (0.0, None),
    "fit.lr_decay": (0.0, 1.0), "fit.lr_decay_steps": (1, None), "fit.grad_clip": (0.0, None),
    "fit.seed": (0, None), "pd.lambda2": (0.0, None), "pd.code_burn_in_epoch": (-1, 99),
    "pd.code_switch_epoch": (0, 100), "pd.grid_loss_max": (0.0, None), "pd.grid_diff_max": (0.0, None),
    "pd.grid_points": (2, None), "dd.burn_in_seed": (0, None), "dd.record_fraction": (0.0, 1.0),
    "forgetting.selection_seed": (0, None), "surface.points": (3, None), "surface.tolerance": (0.0, None),
    "surface.lambda_max": (0.0, None),
}
CHOICES: dict[str, list] = {"pd.schedule": ["paper", "code"], "net.unfitted_epochs": UNFITTED_EPOCHS}


def _check_tree(where: str, got: Any, defaults: dict[str, Any], prefix: str = "") -> None:

    if not isinstance(got, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(got).__name__}")
    for k, v in got.items():
        if k not in defaults:
            raise ConfigError(f"{where}.{k}: unknown key; allowed: {', '.join(sorted(defaults))}")
        d = defaults[k]
        key = f"{prefix}{k}"
        if key == "pd.fit":        # overrides of `fit`: its keys and ranges
            _check_tree(f"{where}.{k}", v, MENTOR_DEFAULTS["fit"], "fit.")
        elif isinstance(d, dict) and k != "profiles":
            _check_tree(f"{where}.{k}", v, d, f"{key}.")
        elif k != "profiles":
            check_value(f"{where}.{k}", v, d, RANGES.get(key), CHOICES.get(key))


def _check_keep_grid(where: str, tree: dict[str, Any]) -> None:
    grid = (tree.get("forgetting") or {}).get("keep_grid")
    if grid is not None and (not grid or any(isinstance(g, bool) or not isinstance(g, (int, float))
                                             or not 0 < g <= 1 for g in grid)):
        raise ConfigError(f"{where}.forgetting.keep_grid: expected a non-empty list of keep "
                          f"probabilities in (0, 1], got {grid!r}")


def validate_mentor(section: Any, raw: dict[str, Any]) -> None:
    """Refuse unknown keys, wrong types and out-of-range values of `mentor:` (and its profiles)."""
    _check_tree("mentor", section, MENTOR_DEFAULTS)
    _check_keep_grid("mentor", section)
    for pname, over in (section.get("profiles") or {}).items():
        if pname not in raw.get("profiles", {}):
            raise ConfigError(f"mentor.profiles.{pname}: unknown profile; allowed: "
                              f"{', '.join(sorted(raw.get('profiles', {})))}")
        _check_tree(f"mentor.profiles.{pname}", over, {k: v for k, v in MENTOR_DEFAULTS.items()
                                                         if k != "profiles"})
        _check_keep_grid(f"mentor.profiles.{pname}", over)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def mentor_settings(raw: dict[str, Any]) -> dict[str, Any]:
    """The resolved `mentor:` settings for the active profile (defaults <- section <- profile)."""
    section = raw.get("mentor", {}) or {}
    merged = _merge(MENTOR_DEFAULTS, {k: v for k, v in section.items() if k != "profiles"})
    over = (section.get("profiles") or {}).get(raw.get("profile"), {})
    merged = _merge(merged, over)
    merged.pop("profiles", None)
    return merged

