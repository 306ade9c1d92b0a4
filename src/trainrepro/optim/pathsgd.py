"""Path-SGD (Neyshabur, Salakhutdinov & Srebro, NIPS 2015): steepest descent with respect to the
path regulariser phi_2(w) = sum over input->output paths of prod_e w_e^2, for ReLU networks.

For an edge e = (u -> v) the diagonal scaling is kappa_e = gamma_in(u) * gamma_out(v), the sum
over the paths through e of the product of the other squared weights, and the step is

    w_e <- w_e - lr * (dL/dw_e) / kappa_e.

kappa for every parameter at once (METHODS.md s.1, the official code's trick): run the network
with every parameter squared on an all-ones input, backpropagate the sum of the outputs; the
gradient with respect to each squared parameter is its kappa. A bias is an edge from an always-on
unit, so its kappa is gamma_out(v). This is exact for ReLU MLPs and for conv nets without
pooling/normalisation; with max-pooling (all-ones inputs pass the max, not the sum), batch-norm
(eval mode: unsquared running statistics) or zero padding it is an approximation (METHODS.md).

The official PyTorch code (bneyshabur/path-sgd) never applies its scaling (a generator exhausted
on first use: plain SGD in effect). This implementation follows the formula.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn
from torch.func import functional_call

from .common import sgd_direction
from .registry import register_optimizer


class PathSGD(torch.optim.Optimizer):
    """Path-SGD (p = 2) on every parameter of `model`; kappa refreshed every `refresh_every`
    steps (1 = the paper's every step) with one extra forward/backward of a one-example batch."""

    def __init__(self, model: nn.Module, lr: float, weight_decay: float = 0.0, momentum: float = 0.0,
                 eps: float = 1e-6, refresh_every: int = 1):
        self.named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        super().__init__([p for _, p in self.named], {"lr": lr, "weight_decay": weight_decay,
                                                      "momentum": momentum})
        self.model = model
        self.eps = float(eps)            # kappa floor (our choice; the paper has none)
        self.refresh_every = int(refresh_every)
        self.create_graph = False
        self.steps = 0
        self.input_shape: tuple[int, ...] | None = None
        self._hook = model.register_forward_pre_hook(self._record_input)

    def _record_input(self, module: nn.Module, args: tuple) -> None:
        if self.input_shape is None and args and torch.is_tensor(args[0]):
            self.input_shape = tuple(args[0].shape[1:])

    def kappa(self) -> list[torch.Tensor]:
        """kappa_e for every parameter (same shapes), by the squared-weights forward/backward."""
        assert self.input_shape is not None, "Path-SGD needs one forward pass to know the input shape"
        sq = {n: p.detach().square().requires_grad_() for n, p in self.named}
        buffers = dict(self.model.named_buffers())
        ones = torch.ones((1, *self.input_shape), device=self.named[0][1].device)
        was = self.model.training
        self.model.eval()
        try:
            with torch.enable_grad():
                out = functional_call(self.model, {**buffers, **sq}, (ones,))
                grads = torch.autograd.grad(out.sum(), list(sq.values()), allow_unused=True)
        finally:
            self.model.train(was)
        return [torch.zeros_like(s) if g is None else g for s, g in zip(sq.values(), grads)]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        if self.steps % self.refresh_every == 0:
            for (_, p), k in zip(self.named, self.kappa()):
                self.state[p]["kappa"] = k.clamp_min(self.eps)
        self.steps += 1
        g = self.param_groups[0]
        for _, p in self.named:
            if p.grad is None:
                continue
            st = self.state[p]
            # scale the (weight-decayed) gradient first, then momentum on the scaled direction
            scaled = p.grad.add(p, alpha=g["weight_decay"]) / st["kappa"]
            p.add_(sgd_direction(p, scaled, st, 0.0, g["momentum"]), alpha=-g["lr"])
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["pathsgd"] = {"steps": self.steps, "input_shape": self.input_shape}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        extra = state_dict.get("pathsgd", {})
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "pathsgd"})
        self.steps = int(extra.get("steps", 0))
        self.input_shape = extra.get("input_shape", self.input_shape)


@register_optimizer("pathsgd", momentum=0.0, eps=1e-6, refresh_every=1)
def pathsgd(model: nn.Module, lr: float, weight_decay: float, **args: Any) -> PathSGD:
    """Path-SGD (Neyshabur et al. 2015), p = 2, momentum 0 as in the paper's MATLAB code."""
    return PathSGD(model, lr=lr, weight_decay=weight_decay, **args)
