"""I-alternation (Sec. 4.1), B-alternation (Sec. 4.2, Eq. 39-41) and DSD (Han et al.; the
paper's Table 8 flow) as methods of the one engine.

I-alternation (`i_alt`): `warmup_epochs` epochs of plain SGD (free hard-threshold units), then
repeat: estimate every training example's multi-layer support with the current weights (one
pass over the training split, eval mode: no augmentation, no dropout), train the weights with
those masks fixed (`forward` hook: the masks of the batch's examples, looked up by
`batch.idx`) until the plateau rule on the epoch's training loss fires (`methods.common.Plateau`:
patience, min_gap, max_gap), re-estimate at the next epoch start. The epochs at which masks were
estimated are the run's `alternation_epochs` (Fig. 3). Masks are kept
- `store: stored`   bit-packed on the device (`masks.MaskStore`; bytes per example and in total
                    are in the run summary), or
- `store: snapshot` recomputed for every batch from a frozen copy of the weights taken at
                    estimation time (the same masks without augmentation; with augmentation
                    these are the masks of the augmented images).
Either way the frozen copy is kept: it makes resume exact (stored masks up to `CHECKPOINT_MASK_
BYTES` travel in the checkpoint, larger ones are recomputed from it on resume) and it gives
the "snapshot" MaskT reading.

B-alternation (`b_alt`): after the warm-up every training batch computes one mask per layer on
the fly from its own pre-activations (`masks.batch_mask`: Eq. 41, beta_B = N * t, or the
majority vote). `b_apply: replace` (the text: "a fixed multi-layer support is shared across a
mini-batch") uses it as every example's support, so the network is one linear map per batch;
`b_apply: gate` multiplies it onto each example's own support (z = m_batch * eta*(q)): units
whose batch energy is low are pruned for the batch (the reading under which Sec. 4.2 calls it a
batch-wise "regularization" and prunes "the connections with zero mask" inside DSD).

MaskT (Table 2, "applies the binary mask rather than ReLU activations for testing"): the test
set evaluated with masks instead of each example's own nonlinearity, in these readings:
    standard   each test example's own hard-threshold (the normal test; for reference)
    snapshot   the test example's mask computed with the weights of the last estimation
               (the training-mask rule applied to the test example), final weights
    nearest    the stored training mask of the nearest training example (L2, normalised input)
    batch      the B-alternation mask (Eq. 41) of each test batch of `batch_size`
    majority   one mask for every test example: the majority vote of all stored training masks
All are computed once at the end of the run (final weights) into the summary; `maskt` names
the reading reported as the "I-alternation + MaskT" row.

DSD (`dsd`): dense training (`dense_frac` of the epochs), a sparse phase (`sparse_frac`) and a
re-dense phase (the rest, lr x `redense_lr`). `sparse: magnitude` prunes each conv / linear
weight tensor to `sparsity` by magnitude (k = N(1 - s) largest |w| kept, Han et al.) and keeps
the pruned weights and their momentum at exactly zero after every optimizer step; `sparse:
b_alt | i_alt` runs B- / I-alternation in the sparse phase instead, i.e. prunes, per batch /
per example, the connections into units whose mask is zero ("eliminating the need to set the
sparsity degree"). The re-dense phase frees every weight; pruned ones restart from zero.
"""
from __future__ import annotations

import copy
import math
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from ...methods import register
from ...methods.base import Method
from ...methods.common import Plateau
from ...models.activations import swap_activations
from ...registry import ConfigError
from .masks import MaskStore, batch_mask, batch_rule, fixed_masks, recording
from .units import HardThreshold, units_of

CHECKPOINT_MASK_BYTES = 64 * 2**20  # stored masks up to this size are saved in checkpoints
MASKT_READINGS = ["standard", "snapshot", "nearest", "batch", "majority"]

# The hard-threshold units' switches (units.py). A method swaps the model's nn.ReLU modules for
# units with these switches; a model built with `activation: ht_relu` keeps its own units.
UNIT_DEFAULTS: dict[str, Any] = {"mask_rule": "gt", "output": "q", "beta_grad": "ste", "beta_init": 0.0}
UNIT_CHOICES: dict[str, list] = {"mask_rule": ["gt", "sq"], "output": ["q", "q_minus_beta"],
                                 "beta_grad": ["ste", "none"]}

COMMON_DEFAULTS: dict[str, Any] = {
    **UNIT_DEFAULTS, "warmup_epochs": 2, "store": "stored",
    "patience": 2, "min_gap": 2, "max_gap": 50, "min_delta": 0.0,
    # the same three as fractions of the run's epochs (>= 0 replaces the epoch counts above;
    # rounded, gaps at least 1), so one method instance fits every profile's schedule
    "warmup_frac": -1.0, "min_gap_frac": -1.0, "max_gap_frac": -1.0,
    "b_rule": "energy", "b_energy": "ht", "b_tau": 0.1, "b_tau_mode": "relative", "b_vote": 0.5,
    "b_apply": "replace", "maskt": "snapshot",
}
COMMON_RANGES: dict[str, tuple] = {
    "warmup_epochs": (0, None), "patience": (1, None), "min_gap": (1, None), "max_gap": (1, None),
    "min_delta": (0.0, None), "b_tau": (0.0, None), "b_vote": (0.0, 1.0),
    "warmup_frac": (-1.0, 1.0), "min_gap_frac": (-1.0, 1.0), "max_gap_frac": (-1.0, 1.0),
}
COMMON_CHOICES: dict[str, list] = {
    **UNIT_CHOICES, "store": ["stored", "snapshot"], "b_rule": ["energy", "majority"], "b_energy": ["ht", "q"],
    "b_tau_mode": ["absolute", "relative"], "b_apply": ["replace", "gate"], "maskt": MASKT_READINGS,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class AlternationBase(Method, ABC):
    """Shared machinery: HT units, the alternation window, mask estimation, storage, MaskT."""

    family: ClassVar[str] = "alternation_base"
    defaults = COMMON_DEFAULTS
    ranges = COMMON_RANGES
    choices = COMMON_CHOICES

    def __init__(self, params: dict[str, Any], trainer: Any):
        super().__init__(params, trainer)
        p = self.p
        self.warmup, min_gap, max_gap = self.schedule()
        self.plateau = Plateau(p["patience"], min_gap, max_gap, p["min_delta"])
        self.units: list[HardThreshold] = []
        self.snapshot: nn.Module | None = None
        self.snap_units: list[HardThreshold] = []
        self.store: MaskStore | None = None
        self.n_est = 0
        self.pending = False
        self.alternation_epochs: list[int] = []
        self.estimation_time_s: list[float] = []
        self.estimation_cpu_s: list[float] = []
        self.density = float("nan")
        self.epoch = 0
        self._bdens = None
        self._bsteps = 0
        self._maskt: dict[str, float] | None = None

    def schedule(self) -> tuple[int, int, int]:
        """(warm-up epochs, min gap, max gap) of this run (fractions resolved on cfg epochs)."""
        p, e = self.p, int(self.trainer.cfg["epochs"])
        warm = int(round(p["warmup_frac"] * e)) if p["warmup_frac"] >= 0 else p["warmup_epochs"]
        lo = max(1, int(round(p["min_gap_frac"] * e))) if p["min_gap_frac"] >= 0 else p["min_gap"]
        hi = max(lo, int(round(p["max_gap_frac"] * e))) if p["max_gap_frac"] >= 0 else p["max_gap"]
        return warm, lo, hi

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str) -> dict[str, Any]:
        full = super().validate_params(params, where)
        if full.get("min_gap", 1) > full.get("max_gap", 1):
            raise ConfigError(f"{where}.min_gap: {full['min_gap']} exceeds max_gap {full['max_gap']}")
        return full

    # --- what the subclasses decide -------------------------------------------------------
    @property
    @abstractmethod
    def kind(self) -> str | None:
        """'i' (example-wise masks), 'b' (batch-wise masks) or None (no masks)."""

    @property
    def needs_units(self) -> bool:
        return self.kind is not None

    def window(self) -> tuple[int, int]:
        """[start, end) epochs in which the alternation runs."""
        return self.warmup, 2**31

    def alternating(self, epoch: int) -> bool:
        start, end = self.window()
        return self.kind is not None and start <= epoch < end

    # --- hooks ------------------------------------------------------------------------------
    def wrap_model(self, model: nn.Module) -> nn.Module:
        if self.needs_units and not units_of(model):
            example = torch.zeros(1, *self.trainer.data.x_pool.shape[1:])
            swap_activations(model, "ht_relu", {k: self.p[k] for k in UNIT_DEFAULTS}, example)
        self.units = units_of(model)
        return model

    def phase(self, epoch: int) -> int:
        start, end = self.window()
        return 0 if epoch < start else 1 if epoch < end else 2

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        if self.kind == "i" and self.alternating(epoch) and (self.n_est == 0 or self.pending):
            self.estimate(epoch)
        elif not self.alternating(epoch) and epoch >= self.window()[1]:
            self.store = None  # after the sparse phase of DSD: free the masks

    def forward(self, net, batch):
        if not self.alternating(self.epoch):
            return net(batch.x)
        if self.kind == "i":
            with fixed_masks(self.units, self.masks_for(batch.idx, batch.x)):
                return net(batch.x)
        with batch_rule(self.units, self.b_mask):
            return net(batch.x)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        if self.kind == "i" and self.alternating(epoch) and self.n_est > 0:
            if self.plateau.update(float(metrics["train_loss"])):
                self.pending = True
        return False

    def epoch_metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.kind == "i":
            out = {"alternations": self.n_est, "mask_density": self.density}
        elif self.kind == "b" and self._bsteps:
            out = {"b_mask_density": float(self._bdens) / self._bsteps}
            self._bdens, self._bsteps = None, 0
        return out

    # --- masks ------------------------------------------------------------------------------
    def b_mask(self, q: torch.Tensor, unit: HardThreshold) -> torch.Tensor:
        p = self.p
        m = batch_mask(q, unit, p["b_rule"], p["b_energy"], p["b_tau"], p["b_tau_mode"], p["b_vote"])
        if unit.training:  # running mean density of the batch masks (no host sync)
            d = m.float().mean()
            self._bdens = d if self._bdens is None else self._bdens + d
            self._bsteps += 1
        return m if p["b_apply"] == "replace" else unit.mask(q) * m.to(q.dtype)  # float kernels

    def take_snapshot(self) -> None:
        """A frozen copy of the current weights (eval mode: no dropout)."""
        snap = copy.deepcopy(self.trainer.model).eval()
        for prm in snap.parameters():
            prm.requires_grad_(False)
        self.snapshot, self.snap_units = snap, units_of(snap)

    @torch.no_grad()
    def snapshot_masks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every unit's mask of inputs `x` under the frozen weights."""
        assert self.snapshot is not None
        with recording(self.snap_units) as rec:
            self.snapshot(x)
        return [r[0] for r in rec]

    @torch.no_grad()
    def fill_store(self) -> None:
        data = self.trainer.data
        self.store = MaskStore(self.units, data.train_idx, len(data.x_pool))
        bs = int(self.trainer.cfg.get("eval_batch_size", 1024))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.trainer.device.type == "cuda"):
            for b in data.subset_batches(data.train_idx, bs):
                self.store.write(b.idx, self.snapshot_masks(b.x))

    def estimate(self, epoch: int) -> None:
        """One pass over the training split: every example's multi-layer support."""
        _sync(self.trainer.device)
        t0, c0 = time.perf_counter(), time.process_time()
        self.take_snapshot()
        if self.p["store"] == "stored":
            self.fill_store()
            self.density = self.store.density()
        _sync(self.trainer.device)
        self.estimation_time_s.append(time.perf_counter() - t0)
        self.estimation_cpu_s.append(time.process_time() - c0)
        self.n_est += 1
        self.pending = False
        self.alternation_epochs.append(epoch)
        self.plateau.reset()

    def masks_for(self, idx: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        """Masks of a training batch: stored ones by pool index, or from the frozen weights."""
        if self.store is not None:  # 0 / 1 floats: no cast per unit in the forward
            return self.store.read(idx, torch.float32)
        return self.snapshot_masks(x)

    def mask_bits(self) -> int:
        return sum(u.numel for u in self.units)

    # --- MaskT --------------------------------------------------------------------------------
    @torch.no_grad()
    def train_masks(self, idx: torch.Tensor) -> list[torch.Tensor]:
        if self.store is not None:
            return self.store.read(idx)
        data = self.trainer.data
        return self.snapshot_masks(data.inputs(data.x_pool[idx], False, None))

    @torch.no_grad()
    def majority_masks(self) -> list[torch.Tensor]:
        data = self.trainer.data
        sums = None
        for s in range(0, len(data.train_idx), 1024):
            ms = self.train_masks(data.train_idx[s:s + 1024])
            part = [m.float().sum(0) for m in ms]
            sums = part if sums is None else [a + b for a, b in zip(sums, part)]
        return [(s / len(data.train_idx)) > 0.5 for s in sums]

    @torch.no_grad()
    def maskt_results(self) -> dict[str, float]:
        """Test accuracy of the final weights under every MaskT reading."""
        if self._maskt is not None or self.kind != "i" or self.snapshot is None:
            return self._maskt or {}
        tr = self.trainer
        data, model = tr.data, tr.model
        was = model.training
        model.eval()
        bs = int(tr.cfg["batch_size"])
        train_x = data.inputs(data.x_pool[data.train_idx], False, None).flatten(1)
        majority = self.majority_masks()
        correct = {r: 0 for r in MASKT_READINGS}
        n = 0
        for b in data.eval_batches("test", bs):
            for reading in MASKT_READINGS:
                if reading == "standard":
                    logits = model(b.x)
                elif reading == "batch":
                    with batch_rule(self.units, lambda q, u: batch_mask(
                            q, u, self.p["b_rule"], self.p["b_energy"], self.p["b_tau"],
                            self.p["b_tau_mode"], self.p["b_vote"])):
                        logits = model(b.x)
                else:
                    if reading == "snapshot":
                        masks = self.snapshot_masks(b.x)
                    elif reading == "nearest":
                        nearest = torch.cdist(b.x.flatten(1), train_x).argmin(1)
                        masks = self.train_masks(data.train_idx[nearest])
                    else:
                        masks = majority
                    with fixed_masks(self.units, masks):
                        logits = model(b.x)
                correct[reading] += int((logits.float().argmax(1) == b.y).sum())
            n += len(b.y)
        model.train(was)
        self._maskt = {r: correct[r] / max(n, 1) for r in MASKT_READINGS}
        return self._maskt

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "window": list(self.window()),
                               "warmup_min_max_gap": list(self.schedule()),
                               "parameters": sum(p.numel() for p in self.trainer.model.parameters()),
                               "hard_threshold_units": len(self.units),
                               "mask_bits_per_example": self.mask_bits()}
        if self.kind == "i":
            n_train = len(self.trainer.data.train_idx)
            per = math.ceil(self.mask_bits() / 8)
            out.update({"alternation_epochs": self.alternation_epochs, "n_estimations": self.n_est,
                        "estimation_time_s": self.estimation_time_s,
                        "estimation_cpu_s": self.estimation_cpu_s, "store": self.p["store"],
                        "mask_bytes_per_example": per,
                        "mask_bytes_total": per * n_train if self.p["store"] == "stored" else 0,
                        "maskt": self.maskt_results(), "maskt_reading": self.p["maskt"]})
        return out

    # --- resume -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        packed = None
        if self.store is not None and self.store.total_bytes <= CHECKPOINT_MASK_BYTES:
            packed = self.store.packed
        return {"n_est": self.n_est, "pending": self.pending, "plateau": self.plateau.state_dict(),
                "alternation_epochs": list(self.alternation_epochs),
                "estimation_time_s": list(self.estimation_time_s),
                "estimation_cpu_s": list(self.estimation_cpu_s), "density": self.density,
                "snapshot": self.snapshot.state_dict() if self.snapshot is not None else None,
                "has_store": self.store is not None, "packed": packed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_est, self.pending = int(state["n_est"]), bool(state["pending"])
        self.plateau.load_state_dict(state["plateau"])
        self.alternation_epochs = list(state["alternation_epochs"])
        self.estimation_time_s = list(state["estimation_time_s"])
        self.estimation_cpu_s = list(state["estimation_cpu_s"])
        self.density = float(state["density"])
        if state["snapshot"] is not None:
            self.take_snapshot()
            self.snapshot.load_state_dict(state["snapshot"])
        if state["has_store"]:
            if state["packed"] is not None:
                data = self.trainer.data
                self.store = MaskStore(self.units, data.train_idx, len(data.x_pool))
                self.store.packed.copy_(state["packed"])
            else:
                self.fill_store()


@register
class HardThresholdSGD(AlternationBase):
    """Plain SGD with positive hard-thresholding units instead of ReLU (Sec. 3.1's claim)."""
    family = "ht_sgd"
    defaults = UNIT_DEFAULTS
    ranges: ClassVar[dict[str, tuple]] = {}
    choices = UNIT_CHOICES

    def __init__(self, params: dict[str, Any], trainer: Any):
        super().__init__({**COMMON_DEFAULTS, **params}, trainer)  # (the plateau is never fed)

    @property
    def kind(self) -> None:
        return None

    @property
    def needs_units(self) -> bool:
        return True


@register
class IAlternation(AlternationBase):
    """I-alternation: example-wise multi-layer supports, stored or recomputed (Sec. 4.1)."""
    family = "i_alt"

    @property
    def kind(self) -> str:
        return "i"


@register
class BAlternation(AlternationBase):
    """B-alternation: one multi-layer support per mini-batch, on the fly (Sec. 4.2, Eq. 41)."""
    family = "b_alt"

    @property
    def kind(self) -> str:
        return "b"


@register
class DSD(AlternationBase):
    """Dense -> sparse (magnitude pruning, or I- / B-alternation) -> re-dense (Han et al.)."""
    family = "dsd"
    defaults = {**COMMON_DEFAULTS, "dense_frac": 0.4, "sparse_frac": 0.3, "sparse": "magnitude",
                "sparsity": 0.3, "redense_lr": 0.1}
    ranges = {**COMMON_RANGES, "dense_frac": (0.0, 1.0), "sparse_frac": (0.0, 1.0),
              "sparsity": (0.0, 1.0), "redense_lr": (0.0, None)}
    choices = {**COMMON_CHOICES, "sparse": ["magnitude", "i_alt", "b_alt"]}

    def __init__(self, params: dict[str, Any], trainer: Any):
        super().__init__(params, trainer)
        self.prune_masks: dict[str, torch.Tensor] = {}
        self._hook = None
        self.sparsity_realised = float("nan")

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str) -> dict[str, Any]:
        full = super().validate_params(params, where)
        if full["dense_frac"] + full["sparse_frac"] > 1.0:
            raise ConfigError(f"{where}.sparse_frac: dense_frac + sparse_frac must be <= 1")
        return full

    @property
    def kind(self) -> str | None:
        return {"magnitude": None, "i_alt": "i", "b_alt": "b"}[self.p["sparse"]]

    def window(self) -> tuple[int, int]:
        e = int(self.trainer.cfg["epochs"])
        start = int(round(self.p["dense_frac"] * e))
        return start, start + int(round(self.p["sparse_frac"] * e))

    def pruned_params(self) -> dict[str, nn.Parameter]:
        """The weight tensors DSD prunes: every conv and linear weight (not biases, not beta)."""
        return {f"{name}.weight": mod.weight for name, mod in self.trainer.model.named_modules()
                if isinstance(mod, (nn.Conv2d, nn.Linear))}

    @torch.no_grad()
    def prune(self) -> None:
        """Per-layer magnitude masks: keep the k = N (1 - s) largest |w| (ties kept)."""
        kept = total = 0
        for name, w in self.pruned_params().items():
            k = max(1, int(round(w.numel() * (1.0 - self.p["sparsity"]))))
            lam = w.detach().abs().flatten().kthvalue(w.numel() - k + 1).values
            mask = w.detach().abs() >= lam
            self.prune_masks[name] = mask
            kept += int(mask.sum())
            total += mask.numel()
        self.sparsity_realised = 1.0 - kept / max(total, 1)
        self.reapply()
        self.ensure_hook()

    def ensure_hook(self) -> None:
        """Re-apply the pruning masks after every optimizer step (momentum would revive them)."""
        if self.prune_masks and self._hook is None:
            self._hook = self.trainer.optimizer.register_step_post_hook(self.reapply)

    @torch.no_grad()
    def reapply(self, *_: Any) -> None:
        """Pruned weights and their momentum back to exactly zero (after every step)."""
        params = self.pruned_params()
        state = self.trainer.optimizer.state
        for name, mask in self.prune_masks.items():
            w = params[name]
            w.mul_(mask)
            buf = state.get(w, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_(mask)

    def on_phase_change(self, phase: int) -> None:
        if phase == 1 and self.p["sparse"] == "magnitude":
            self.prune()
        if phase == 2:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None
            self.prune_masks = {}
            for g in self.trainer.optimizer.param_groups:
                g["lr_scale"] = g.get("lr_scale", 1.0) * float(self.p["redense_lr"])

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.ensure_hook()  # after a resume inside the sparse phase

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "sparse": self.p["sparse"], "sparsity": self.p["sparsity"],
                "sparsity_realised": self.sparsity_realised}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "prune_masks": dict(self.prune_masks),
                "sparsity_realised": self.sparsity_realised}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.prune_masks = dict(state["prune_masks"])
        self.sparsity_realised = float(state["sparsity_realised"])
