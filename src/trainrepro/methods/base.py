"""The Method interface: the hooks through which every paper's twist enters the one engine.

A method overrides only the hooks it needs (DESIGN.md section 2). The engine calls them in
this order; every hook is listed with its real signature:

| hook                                             | when                               | used by                        |
|--------------------------------------------------|------------------------------------|--------------------------------|
| `resolve_run(spec, results_root) -> dict` (cls)  | before the run, in the train stage | MentorNet (mentor file), Forgetting (dropout) |
| `planned_epochs(epochs) -> int`                  | once, at construction              | LGL (m steps), matched baseline |
| `wrap_model(model) -> nn.Module`                 | once, before the optimizer is built | Forgetting, Goldberger, alternation (HT units) |
| `optimizer_overrides(model) -> [(params, settings)]` | once, when the optimizer is built | Goldberger (channel without weight decay) |
| `phase(epoch) -> int`                            | every epoch start                  | LGL steps, Goldberger (pretraining) |
| `on_phase_change(phase)`                         | when `phase` changes               | LGL (lr reset, classifier re-init), Goldberger (channel init) |
| `on_epoch_start(epoch)`                          | every epoch, after the phase check | MentorNet, SPL, LGL, self-paced |
| `active_subset(epoch) -> Tensor or None`         | every epoch                        | LGL steps, SPL / SPL_INV / SPLD, self-paced |
| `forward(net, batch) -> logits`                  | every training step                | alternation (per-example masks by `batch.idx`) |
| `loss(logits, targets, batch) -> (B,)`           | every training step                | Reed, Goldberger, focal        |
| `sample_weights(batch, per_sample_loss, progress) -> (B,) or None` | every step       | MentorNet, self-paced, focal   |
| `on_epoch_end(epoch, metrics) -> bool (stop)`    | after evaluation                   | MentorNet record, LGL, alternation |
| `epoch_metrics() -> dict`                        | into the epoch's history row       | MentorNet, SPL, LGL            |
| `summary() -> dict`                              | into the run record                | MentorNet, LGL, Goldberger     |
| `state_dict()` / `load_state_dict(state)`        | checkpoints / resume               | every stateful method          |

The optimizer is not a method hook: optimizers come from the optimizer registry, are built from
the model, and receive the loss through torch's `step(closure)` (see `optim/__init__.py`); a
method only moves some parameters into groups with other settings (`optimizer_overrides`).
Methods see the trainer only through `TrainerView`.

Hyper-parameters are declared in `defaults` (types are taken from the defaults), with
optional `ranges` (key -> (low, high), inclusive) and `choices` (key -> allowed values);
`validate_params` refuses unknown keys, wrong types and out-of-range values before any work.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import ConfigError, Registry, check_value

if TYPE_CHECKING:  # pragma: no cover  (type names only; no import cycle at run time)
    from ..data.loader import Batch, RunData


class TrainerView(Protocol):
    """What a method may read and call on the engine's trainer (and nothing else).

    cfg        the run's resolved config (read only)
    data       the run's dataset (`RunData`: train_idx, noisy, true, clean_idx, ...)
    device     where the model and data live
    epochs     planned epochs of this run
    generator  the run's CPU RNG for sampling (checkpointed with the run)
    model      the (wrapped) model being trained
    optimizer  its optimizer (param_groups may be read; methods that scale weight decay write it)
    run_dir    the run's output directory, or None for runs without a record
    """

    cfg: dict[str, Any]
    data: "RunData"
    device: torch.device
    epochs: int
    generator: torch.Generator
    model: nn.Module
    optimizer: torch.optim.Optimizer
    run_dir: Path | None

    def predict(self, indices: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits (float32) for pool indices: eval mode, no augmentation, no gradient."""
        ...

    def restart_schedule(self, epoch: int, total: int | None = None) -> None:
        """Restart the lr schedule at `epoch` (lr back to its initial value)."""
        ...

    def reset_optimizer_state(self) -> None:
        """Drop momentum / adaptive statistics, keeping the parameter groups."""
        ...


class Method:
    """Default behaviour = plain empirical risk minimisation with cross-entropy (FullModel)."""

    family: ClassVar[str] = "base"
    defaults: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, tuple]] = {}
    choices: ClassVar[dict[str, list]] = {}
    # How the engine reduces sum_i v_i * loss_i: "batch" divides by the batch size (MentorNet's
    # code), "weights" by sum_i v_i. Methods may expose it as a parameter.
    weight_normalisation: str = "batch"

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
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

    def optimizer_overrides(self, model: nn.Module) -> list[tuple[list[nn.Parameter], dict[str, Any]]]:
        """Parameters that get their own optimizer group settings, e.g. `([p], {"weight_decay":
        0.0})`; every other setting is the group's the optimizer builder made."""
        return []

    def phase(self, epoch: int) -> int:
        """Training phase; when it changes the engine calls `on_phase_change` first."""
        return 0

    def on_phase_change(self, phase: int) -> None:
        return None

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def active_subset(self, epoch: int) -> torch.Tensor | None:
        """Pool indices to train on this epoch; None = the whole training split."""
        return None

    def forward(self, net: Callable[[torch.Tensor], torch.Tensor], batch: "Batch") -> torch.Tensor:
        """Logits of a training batch. `net` is the (possibly compiled) model; a method that keeps
        per-example state (stored masks) binds it here through `batch.idx`."""
        return net(batch.x)

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

    def summary(self) -> dict[str, Any]:
        """What the run record keeps about the method (e.g. the mentor used, LGL's order)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the method exactly (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


METHODS: Registry = Registry("method family")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: register a Method subclass under its `family`."""
    METHODS.register(cls.family)(cls)
    return cls
