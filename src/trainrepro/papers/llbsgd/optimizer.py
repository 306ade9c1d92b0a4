"""LLb-SGD (Zheng, Tian, Jiang, Yang, 2019), layer-wise learning-rate SGD: a labelled
*reconstruction*.

The paper's update equations (its Eqs. 8-12) are lost. This reconstruction follows the
paper's words (REFERENCE.md section 3): one learning rate per Conv/Linear layer; a variation
statistic F_k per layer (conv: mean Frobenius norm of the per-(out, in) kernel variations;
fc: mean |dW|, plus an optional gamma * mean |g(t-1)|); a descent direction delta from the
smoothed training loss and its change; the layer rate "reduced in a negative exponential form":

    eta_k <- max(eta_min, eta_k * exp(-xi * delta * F_k))      when F_k > threshold.

Every piece that is a guess is an argument of `llbsgd` below; its comment says "guess" and
names the alternative reading. With xi = 0 the optimizer is torch.optim.SGD, step for step.

Host-side contract (optim/__init__.py): the live per-layer scale is a device tensor
(`self.scale`, updated inside `step` with no host synchronisation); `group["lr_scale"]` is its
host mirror, refreshed (and `group["lr"]` rescaled by the same ratio) only at epoch ends, by
`epoch_metrics()` and `state_dict()`. The rate a layer uses at a step is
`group["lr"] / group["lr_scale"] * scale[k]` = base_lr x schedule factor x live scale.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from ...optim import register_optimizer

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
LAYER_TYPES = CONV_TYPES + (nn.Linear,)
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)

# Arguments of the reconstruction and their defaults. "guess" marks what the lost equations
# would have fixed; the alternative reading is named beside it.
LLBSGD_DEFAULTS: dict[str, Any] = {
    "xi": 1.0,               # decay term xi of Eq. 10 (value lost; guess; Table 1 of the paper has none).
                             # F_k is an absolute weight change (mean kernel norm of rate x step, ~1e-3
                             # per step at lr 0.1 on the quick CNN, ~1e-4 at lr 0.01), so at xi = 1 a
                             # rate falls by ~exp(-sum_t F_k): to 0.65-0.94 of its start over the quick
                             # profile's 108 steps at lr 0.1, to >= 0.99 at lr 0.01 (benchmarks/RESULTS.md).
                             # Alternatives: a larger xi (10: mean scale 0.43 after 108 steps at lr 0.1;
                             # 30: 0.28), or F_k relative to the layer's weight norm (scale-free; not built)
    "threshold": 0.0,        # Table 1 "threshold" (value lost): gate on F_k (gate=decay) or floor
                             # on the rate (gate=floor)
    "eta_min": 0.0,          # floor of a layer rate, absolute (guess: max(eta_min, .) is our
                             # reading of "reduced in a negative exponential form"; alternative: no floor)
    "gamma": 0.0,            # fc only: weight of mean |g(t-1)|, "the overall gradient of the last
                             # iteration" (guess: per layer; alternative: the whole network's gradient)
    "loss_ema": 0.9,         # smoothing of the training loss behind delta (guess; alternative:
                             # the raw mini-batch loss, loss_ema = 0)
    "kernel": "2d",          # conv granularity of a "kernel": per-(out, in) 2-D slice (guess) |
                             # 3d = one whole output filter
    "delta": "ratio",        # delta form: clip(Lbar(t) / Lbar(t-1), delta_lo, delta_hi) (guess) |
                             # sign = sign(Lbar(t-1) - Lbar(t)) (rate recovers, capped at its start, while the loss rises)
    "delta_lo": 0.5,         # ratio clip (guess)
    "delta_hi": 2.0,
    "gate": "decay",         # what the threshold gates: the decay happens only when F_k > threshold
                             # (guess) | floor = decay at every step, rate never below the threshold
    "variation": "update",   # dW = the weight change of this step (guess) | grad = the raw gradient
    "momentum": 0.0,         # the paper's base is "naive SGD" (guess; alternative: 0.9 as our sgd)
    "dampening": 0.0,
    "nesterov": False,
}
CHOICES = {"kernel": ("2d", "3d"), "delta": ("ratio", "sign"), "gate": ("decay", "floor"),
           "variation": ("update", "grad")}


def layer_groups(model: nn.Module) -> list[dict[str, Any]]:
    """One parameter group per Conv/Linear layer, in module order (reconstruction).

    Normalisation parameters (BatchNorm, GroupNorm, LayerNorm) travel with the layer before
    them (with the first layer if none comes before); the layer's weight is `params[0]`.
    Parameters of any other module form one last group of kind "other", never adapted.
    """
    groups: list[dict[str, Any]] = []
    pending: list[nn.Parameter] = []
    other: list[nn.Parameter] = []
    seen: set[int] = set()
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if isinstance(m, LAYER_TYPES):
            params = [m.weight] + [p for p in own if p is not m.weight]
            groups.append({"params": params + pending, "layer": name or "model",
                           "kind": "conv" if isinstance(m, CONV_TYPES) else "fc"})
            pending = []
        elif isinstance(m, NORM_TYPES):
            (groups[-1]["params"] if groups else pending).extend(own)
        else:
            other.extend(own)
    other.extend(pending)
    if other:
        groups.append({"params": other, "layer": "other", "kind": "other"})
    return groups


def variation_stat(d: torch.Tensor, kind: str, kernel: str) -> torch.Tensor:
    """The per-layer variation statistic of a weight-shaped tensor `d` (reconstruction; the
    reference definition that the fused computation in `LLbSGD.step` is tested against).

    conv, kernel 2d: mean over (out, in) pairs of the Frobenius norm of d[o, i] (the spatial
    kernel); kernel 3d: mean over output filters of ||d[o]||_F; fc: mean |d|.
    """
    if kind == "conv":
        dims = tuple(range(2, d.ndim)) if kernel == "2d" else tuple(range(1, d.ndim))
        return torch.linalg.vector_norm(d, dim=dims).mean()
    return d.abs().mean()


def loss_delta(avg: torch.Tensor, loss: torch.Tensor, beta: float, form: str, lo: float,
               hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(new smoothed loss, delta) from the previous smoothed loss and this step's loss
    (reconstruction; device tensors in and out, no host synchronisation).

    Lbar(t) = beta Lbar(t-1) + (1 - beta) L(t); ratio: delta = clip(Lbar(t) / Lbar(t-1), lo, hi);
    sign: delta = sign(Lbar(t-1) - Lbar(t)) (+1 while the smoothed loss falls).
    """
    new = avg * beta + loss * (1.0 - beta)
    if form == "ratio":
        return new, (new / avg).clamp(lo, hi)
    return new, torch.sign(avg - new)


class LLbSGD(torch.optim.Optimizer):
    """LLb-SGD, a labelled reconstruction (see the module docstring): per-layer SGD whose layer
    rates decay as exp(-xi * delta * F_k) from the layer's variation and the loss trend."""

    def __init__(self, groups: list[dict[str, Any]], lr: float, weight_decay: float = 0.0,
                 **args: Any):
        """Groups from `layer_groups`; `args` = the reconstruction's guesses (LLBSGD_DEFAULTS)."""
        a = {**LLBSGD_DEFAULTS, **args}
        for k, allowed in CHOICES.items():
            if a[k] not in allowed:
                raise ValueError(f"llbsgd.{k}: {a[k]!r} is not allowed; allowed: {', '.join(allowed)}")
        super().__init__(groups, {"lr": lr, "weight_decay": weight_decay, "momentum": a["momentum"],
                                  "dampening": a["dampening"], "nesterov": a["nesterov"]})
        self.args = a
        self.xi = float(a["xi"])
        self.create_graph = False
        self.adapt = [k for k, g in enumerate(self.param_groups) if g["kind"] != "other"]
        device = self.param_groups[0]["params"][0].device
        n = len(self.adapt)
        self.scale = torch.ones(n, device=device)         # live per-layer scale (lr_scale)
        self.loss_avg = torch.zeros((), device=device)    # smoothed training loss Lbar
        self.prev_gabs = torch.zeros(n, device=device)    # mean |g(t-1)| per layer (gamma term)
        self._neg_f = torch.zeros(n, device=device)       # -F_k of the last step
        self.steps = 0
        kinds = [self.param_groups[k]["kind"] for k in self.adapt]
        self._fc_index = torch.tensor([i for i, kd in enumerate(kinds) if kd == "fc"], dtype=torch.long,
                                      device=device)
        # 1 / (number of kernels) for conv layers, 1 / (number of weights) for fc layers
        counts = []
        for k in self.adapt:
            w = self.param_groups[k]["params"][0]
            per = w.shape[0] * (w.shape[1] if a["kernel"] == "2d" else 1)
            counts.append(1.0 / (per if self.param_groups[k]["kind"] == "conv" else w.numel()))
        self._inv_count = torch.tensor(counts, device=device)
        self._base_key: tuple | None = None
        self._base = self._floor = self.scale

    # --- the step --------------------------------------------------------------------------
    def _bases(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-layer base rate (lr / lr_scale = base_lr x schedule factor) and the floor in scale
        units, as device tensors, rebuilt only when the host values change (epoch starts).
        Part of the reconstruction (the floor is a guess, see LLBSGD_DEFAULTS)."""
        key = tuple((self.param_groups[k]["lr"], self.param_groups[k]["lr_scale"]) for k in self.adapt)
        if key != self._base_key:
            base = [lr / max(s, 1e-300) for lr, s in key]
            floor = self.args["threshold"] if self.args["gate"] == "floor" else self.args["eta_min"]
            floor = max(floor, self.args["eta_min"])
            dev = self.scale.device
            self._base = torch.tensor(base, dtype=torch.float32, device=dev)
            self._floor = torch.tensor([floor / b if b > 0 else 0.0 for b in base],
                                       dtype=torch.float32, device=dev)
            self._base_key = key
        return self._base, self._floor

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One reconstruction step: closure (loss, gradients), delta from the smoothed loss, the
        per-layer SGD update at rate base x scale_k, then F_k and the gated decay of scale_k."""
        with torch.enable_grad():
            loss = closure()
        a = self.args
        cur = loss.detach().float()
        if self.steps == 0:
            self.loss_avg = cur.clone()
        self.loss_avg, delta = loss_delta(self.loss_avg, cur, a["loss_ema"], a["delta"],
                                          a["delta_lo"], a["delta_hi"])
        self.steps += 1
        dirs = self._directions()
        if self.xi == 0.0:  # plain SGD, torch's arithmetic exactly
            for g in self.param_groups:
                live = [p for p in g["params"] if p.grad is not None]
                if live:
                    torch._foreach_add_(live, [dirs[p] for p in live], alpha=-g["lr"])
            return loss
        base, floor = self._bases()
        lrneg = (base * self.scale).neg_().unbind()   # -rate of each adapted layer
        params, steps, rates = [], [], []
        conv, fc, fc_grads = [], [], []                # (layer index, tensor) for F
        adapt = set(self.adapt)
        for k, g in enumerate(self.param_groups):
            live = [p for p in g["params"] if p.grad is not None]
            if k not in adapt:
                if live:
                    torch._foreach_add_(live, [dirs[p] for p in live], alpha=-g["lr"])
                continue
            i = len(conv) + len(fc)
            w = g["params"][0]
            if w.grad is None:
                src = grad = torch.zeros_like(w)
            else:
                grad = w.grad
                src = dirs[w] if a["variation"] == "update" else grad
            (conv if g["kind"] == "conv" else fc).append((i, src))
            if g["kind"] == "fc":
                fc_grads.append(grad)
            params += live
            steps += [dirs[p] for p in live]
            rates += [lrneg[i]] * len(live)
        torch._foreach_addcmul_(params, steps, rates)  # p <- p - rate_k * d_p
        stats: list[torch.Tensor] = [self._neg_f[0]] * len(self.adapt)
        for i, d in conv:
            dims = tuple(range(2, d.ndim)) if a["kernel"] == "2d" else tuple(range(1, d.ndim))
            stats[i] = torch.linalg.vector_norm(d, dim=dims).sum()
        for (i, _), n in zip(fc, torch._foreach_norm([d for _, d in fc], 1) if fc else []):
            stats[i] = n
        stat = torch.stack(stats) * self._inv_count                    # mean kernel norm / mean |.|
        # -F_k: variation "update" = |dW| = rate x stat; "grad" = stat itself
        neg_f = stat * torch.stack(lrneg) if a["variation"] == "update" else stat.neg_()
        if a["gamma"]:
            neg_f = neg_f - a["gamma"] * self.prev_gabs
            prev = torch.zeros_like(self.prev_gabs)
            prev[self._fc_index] = torch.stack(torch._foreach_norm(fc_grads, 1)) * self._inv_count[self._fc_index]
            self.prev_gabs = prev
        new = torch.maximum(self.scale * torch.exp(neg_f * (delta * self.xi)), floor)
        if a["delta"] == "sign":  # a rate may recover while the loss rises, never above its start
            new = new.clamp(max=1.0)
        else:
            new = torch.minimum(new, self.scale)
        if a["gate"] == "decay":
            new = torch.where(neg_f < -a["threshold"], new, self.scale)
        self.scale = new
        self._neg_f = neg_f
        return loss

    @property
    def last_f(self) -> torch.Tensor:
        """F_k of the last step, per adapted layer (device tensor; reconstruction)."""
        return -self._neg_f

    def _directions(self) -> dict[torch.Tensor, torch.Tensor]:
        """torch SGD's direction d_p of every parameter with a gradient (L2 weight decay,
        momentum, Nesterov), with foreach ops over the parameters sharing hyper-parameters:
        the same per-tensor kernels as torch.optim.SGD, so the same bits (the reconstruction's
        base update is plain SGD)."""
        buckets: dict[tuple, list[torch.Tensor]] = {}
        for g in self.param_groups:
            key = (g["weight_decay"], g["momentum"], g["dampening"], g["nesterov"])
            buckets.setdefault(key, []).extend(p for p in g["params"] if p.grad is not None)
        out: dict[torch.Tensor, torch.Tensor] = {}
        for (wd, mom, damp, nesterov), ps in buckets.items():
            if not ps:
                continue
            grads = [p.grad for p in ps]
            ds = torch._foreach_add(grads, ps, alpha=wd) if wd != 0 else grads
            if mom != 0:
                old = [(self.state[p]["momentum_buffer"], d) for p, d in zip(ps, ds)
                       if "momentum_buffer" in self.state[p]]
                if old:
                    bufs = [b for b, _ in old]
                    torch._foreach_mul_(bufs, mom)
                    torch._foreach_add_(bufs, [d for _, d in old], alpha=1 - damp)
                for p, d in zip(ps, ds):
                    if "momentum_buffer" not in self.state[p]:
                        self.state[p]["momentum_buffer"] = torch.clone(d).detach()
                bufs = [self.state[p]["momentum_buffer"] for p in ps]
                ds = torch._foreach_add(ds, bufs, alpha=mom) if nesterov else bufs
            out.update(zip(ps, ds))
        return out

    # --- host side: epoch ends and checkpoints ---------------------------------------------
    def sync_rates(self) -> list[float]:
        """Copy the live scale into group["lr_scale"] (rescaling group["lr"] by the same ratio,
        per the optimizer contract) and return each adapted layer's current rate. One host
        synchronisation; called at epoch ends only (reconstruction's host side)."""
        scale = self.scale.tolist()
        rates = []
        for s, k in zip(scale, self.adapt):
            g = self.param_groups[k]
            old = g["lr_scale"]
            g["lr"] = g["lr"] / old * s if old > 0 else g["base_lr"] * s
            g["lr_scale"] = s
            rates.append(g["lr"])
        self._base_key = None
        return rates

    def epoch_metrics(self) -> dict[str, float]:
        """Per-layer rates of the reconstruction at the epoch's end (history columns
        `lr[<layer>]`), their mean over layers (`lr_mean`) and the smoothed loss behind delta
        (`loss_avg`)."""
        rates = self.sync_rates()
        out = {f"lr[{self.param_groups[k]['layer']}]": r for k, r in zip(self.adapt, rates)}
        out["lr_mean"] = sum(rates) / max(len(rates), 1)
        out["loss_avg"] = float(self.loss_avg)
        return out

    def mean_rate(self) -> torch.Tensor:
        """Mean over layers of the reconstruction's live rate, as a device tensor (no
        synchronisation)."""
        base, _ = self._bases()
        return (base * self.scale).mean()

    def state_dict(self) -> dict[str, Any]:
        """torch's state plus the reconstruction's per-layer scale, loss average, gamma state
        and step count (so a resumed run is identical)."""
        self.sync_rates()
        sd = super().state_dict()
        sd["llbsgd"] = {"scale": self.scale.clone(), "loss_avg": self.loss_avg.clone(),
                        "prev_gabs": self.prev_gabs.clone(), "steps": self.steps}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Inverse of `state_dict` (reconstruction state moved to this optimizer's device)."""
        extra = state_dict.get("llbsgd")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "llbsgd"})
        if extra is not None:
            dev = self.scale.device
            self.scale = extra["scale"].to(dev)
            self.loss_avg = extra["loss_avg"].to(dev)
            self.prev_gabs = extra["prev_gabs"].to(dev)
            self.steps = int(extra["steps"])
        self._base_key = None


@register_optimizer("llbsgd", **LLBSGD_DEFAULTS)
def llbsgd(model: nn.Module, lr: float, weight_decay: float, **args: Any) -> LLbSGD:
    """LLb-SGD (reconstruction): one parameter group per Conv/Linear layer (`layer_groups`)."""
    return LLbSGD(layer_groups(model), lr=lr, weight_decay=weight_decay, **args)
