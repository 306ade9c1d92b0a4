"""The `lgl_toy:` and `lgl_analysis:` sections of params.yaml: defaults and validation."""
from __future__ import annotations

from typing import Any

from ...config import _check, _check_keys
from ...methods import METHODS
from ...registry import ConfigError

TOY_DEFAULTS: dict[str, Any] = {
    "n_per_class": 200,       # points per Gaussian
    "test_fraction": 0.25,    # held-out points (test loss); the rest is the training set
    "data_seed": 0,
    "settings": [],           # Fig. 2 panels: {name, layout, hidden}
    "centres": {              # layout -> cluster centres (covariance identity), Fig. 2 (g) / (i)
        "separable": [[0.5, 1.73], [-1.0, -0.87], [2.0, -0.87]],   # (g): side 3, axes' centre
        "overlapping": [[0.0, 1.2], [-1.0, -0.6], [1.0, -0.6]],    # (i): side ~2
    },
    "methods": ["baseline", "spl", "spl_inv", "lgl"],
    "lr": 0.01,               # Sec. 5.1: "The learning rate is 0.01 and remains fixed"
    "batch_size": 32,         # mini-batch SGD; one iteration = one batch
    "iterations": 500,        # Fig. 2 x-axis
    "seeds": [0, 1, 2],
    "spl": {},                # SPL / SPL_INV pace (method params of families spl / spl_inv)
    "lgl": {},                # LGL params (family lgl); Sec. 5.1: 2 clusters, then the third
    "reinit_untrained": False,  # Sec. 4.2 re-initialises untrained softmax rows only "when DNN
                                # has many layers": not for the 1- and 3-hidden-layer toy nets
    "loss_snapshot": 0.25,    # Fig. 2 (h): per-sample losses after this share of the budget
    "by_scale": {},           # profile scale -> overrides of the keys above (e.g. tiny: 1 seed)
}
TOY_METHODS = {"baseline": "fullmodel", "spl": "spl", "spl_inv": "spl_inv", "lgl": "lgl"}
ANALYSIS_DEFAULTS: dict[str, Any] = {
    "similar_pairs": {},      # dataset -> [[class a, class b], ...] designated look-alikes
    "table2_rows": 3,         # Table 2 analogue: trained sets shown
}


def toy_params(raw: dict[str, Any], scale: str | None = None) -> dict[str, Any]:
    """The toy section with defaults, and the overrides of `by_scale[scale]` applied."""
    p = {**TOY_DEFAULTS, **(raw.get("lgl_toy") or {})}
    p = {**p, **(p["by_scale"].get(scale) or {})} if scale else p
    return {**p, "centres": {**TOY_DEFAULTS["centres"], **p["centres"]}}


def analysis_params(raw: dict[str, Any]) -> dict[str, Any]:
    return {**ANALYSIS_DEFAULTS, **(raw.get("lgl_analysis") or {})}


def validate_toy(section: Any, raw: dict[str, Any]) -> None:

    _check_keys("lgl_toy", section, TOY_DEFAULTS)
    for scale, over in (section.get("by_scale") or {}).items():
        if not isinstance(over, dict) or "by_scale" in over:
            raise ConfigError(f"lgl_toy.by_scale.{scale}: expected a mapping of lgl_toy keys")
        validate_toy(over, raw)
    for k, v in section.items():
        rng = {"n_per_class": (3, None), "test_fraction": (0.0, 0.9), "data_seed": (0, None),
               "lr": (0.0, None), "batch_size": (1, None), "iterations": (1, None),
               "loss_snapshot": (0.0, 1.0)}.get(k)
        _check(f"lgl_toy.{k}", v, TOY_DEFAULTS[k], rng)
    for layout, cs in section.get("centres", {}).items():   # a mapping (checked above)
        _check("lgl_toy.centres", layout, "", None, list(TOY_DEFAULTS["centres"]))
        if not (isinstance(cs, list) and len(cs) >= 2 and all(
                isinstance(c, list) and len(c) == 2 and all(isinstance(v, (int, float)) for v in c)
                for c in cs)):
            raise ConfigError(f"lgl_toy.centres.{layout}: expected a list of at least two [x, y] points")
    for i, s in enumerate(section.get("settings", [])):
        w = f"lgl_toy.settings[{i}]"
        _check_keys(w, s, ["name", "layout", "hidden"])
        _check(f"{w}.layout", s.get("layout"), "", None, ["separable", "overlapping"])
        if not isinstance(s.get("hidden"), list) or not all(isinstance(h, int) and h > 0
                                                           for h in s["hidden"]):
            raise ConfigError(f"{w}.hidden: expected a non-empty list of positive ints")
    for m in section.get("methods", []):
        _check("lgl_toy.methods", m, "", None, list(TOY_METHODS))
    for s in section.get("seeds", []):
        _check("lgl_toy.seeds", s, 0, (0, None))
    METHODS["spl"].validate_params(section.get("spl", {}), "lgl_toy.spl")
    METHODS["lgl"].validate_params(section.get("lgl", {}), "lgl_toy.lgl")


def validate_analysis(section: Any, raw: dict[str, Any]) -> None:
    _check_keys("lgl_analysis", section, ANALYSIS_DEFAULTS)
    pairs = section.get("similar_pairs", {})
    if not isinstance(pairs, dict):
        raise ConfigError("lgl_analysis.similar_pairs: expected a mapping dataset -> pairs")
    for ds, lst in pairs.items():
        if ds not in raw.get("datasets", {}):
            raise ConfigError(f"lgl_analysis.similar_pairs.{ds}: unknown dataset")
        if not isinstance(lst, list) or not all(isinstance(p, list) and len(p) == 2 for p in lst):
            raise ConfigError(f"lgl_analysis.similar_pairs.{ds}: expected a list of [a, b] pairs")
    _check("lgl_analysis.table2_rows", section.get("table2_rows", 3), 3, (1, None))

