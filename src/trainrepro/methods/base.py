"""The Method interface: the hooks through which every paper's twist enters the one engine.

A method overrides only the hooks it needs (DESIGN.md section 2):

| hook                              | used by                                   |
|-----------------------------------|-------------------------------------------|
| `wrap_model(model)`               | Goldberger layer, alternation (HT-ReLU)   |
| `make_optimizer(model, cfg)`      | LLb-SGD, optimizer comparisons            |
| `active_subset(epoch)`            | LGL steps, SPL / SPL_INV                  |
| `on_phase_change(phase)`          | LGL (lr reset, classifier re-init)        |
| `loss(logits, targets, batch)`    | Reed soft/hard, Goldberger, focal         |
| `sample_weights(batch, loss, p)`  | MentorNet, self-paced, SPLD               |
| `on_epoch_end(epoch, metrics)`    | alternation masks, LGL convergence, ...   |

Hyper-parameters are declared in `defaults` (types are taken from the defaults), with
optional `ranges` (key -> (low, high), inclusive) and `choices` (key -> allowed values);
`validate_params` refuses unknown keys, wrong types and out-of-range values before any work.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..data.loader import Batch
    from ..engine import Trainer


def check_value(key: str, value: Any, default: Any, rng: tuple | None = None,
                choices: list | None = None) -> None:
    """Raise ConfigError naming `key` if `value` does not fit the default's type/range/choices."""
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, choices))}")
    if default is not None:
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ConfigError(f"{key}: expected {type(default).__name__}, got "
                              f"{type(value).__name__} {value!r}")
    if rng is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = rng
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bound = (f"[{lo}, {hi}]" if lo is not None and hi is not None
                     else f">= {lo}" if lo is not None else f"<= {hi}")
            raise ConfigError(f"{key}: {value!r} is out of range (allowed: {bound})")


class Method:
    """Default behaviour = plain empirical risk minimisation with cross-entropy (FullModel)."""

    family: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, tuple]] = {}
    choices: ClassVar[dict[str, list]] = {}
    # How the engine reduces sum_i v_i * loss_i: "batch" divides by the batch size (MentorNet's
    # code), "weights" by sum_i v_i. Methods may expose it as a parameter.
    weight_normalisation: str = "batch"

    def __init__(self, params: dict[str, Any], trainer: "Trainer"):
        self.p = {**self.defaults, **params}
        self.trainer = trainer

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str) -> dict[str, Any]:
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            allowed = ", ".join(sorted(cls.defaults)) or "(none)"
            raise ConfigError(f"{where}.{unknown[0]}: unknown parameter of method family "
                              f"{cls.family!r}; allowed: {allowed}")
        for k, v in params.items():
            check_value(f"{where}.{k}", v, cls.defaults[k], cls.ranges.get(k), cls.choices.get(k))
        return {**cls.defaults, **params}

    @classmethod
    def resolve_run(cls, spec: Any, results_root: str) -> dict[str, Any]:
        """Params a run takes from an upstream stage's outputs (e.g. MentorNet: the mentor file
        and its sha256); they join that run's config hash, so only its cells re-run."""
        return {}

    # --- hooks -----------------------------------------------------------------------------
    def planned_epochs(self, epochs: int) -> int:
        """Upper bound on epochs (LGL trains m steps); `on_epoch_end` may stop earlier."""
        return epochs

    def wrap_model(self, model: nn.Module) -> nn.Module:
        return model

    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer | None:
        """Return an optimizer to replace the configured one, or None to keep it."""
        return None

    def active_subset(self, epoch: int) -> torch.Tensor | None:
        """Pool indices to train on this epoch; None = the whole training split."""
        return None

    def phase(self, epoch: int) -> int:
        """Training phase; when it changes the engine calls `on_phase_change` first."""
        return 0

    def on_phase_change(self, phase: int) -> None:
        return None

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, batch: "Batch") -> torch.Tensor:
        """Per-sample training loss, shape (B,)."""
        return F.cross_entropy(logits.float(), targets, reduction="none")

    def sample_weights(self, batch: "Batch", per_sample_loss: torch.Tensor,
                       progress: float) -> torch.Tensor | None:
        """Weights v_i (no gradient) for the per-sample loss; None = all ones."""
        return None

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Called after evaluation; return True to stop training."""
        return False

    def epoch_metrics(self) -> dict[str, float]:
        """Extra numbers for this epoch's history row (e.g. mean weight, lambda)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the method exactly (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None
