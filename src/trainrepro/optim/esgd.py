"""ESGD (Dauphin, de Vries & Bengio, NIPS 2015): SGD with the equilibration preconditioner.

D accumulates squared Hessian-vector products (Hv)^2 with v ~ N(0, I) (E[(Hv)^2] = diag(H^2)),
refreshed every `update_every` steps (K = 20, METHODS.md s.2); the step is

    theta <- theta - lr * g / (sqrt(D / i) + damping),   i = number of Hv samples so far.

Hv comes from double backward: the engine's closure runs `backward(create_graph=True)` because
`create_graph` is set, and `autograd.grad(grads, params, v)` gives Hv. v is drawn from the
optimizer's own generator (seeded by `seed`, checkpointed with the optimizer).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

import torch
import torch.nn as nn

from .registry import register_optimizer

# backward(create_graph=True) warns about a parameter <-> gradient reference cycle; step()
# breaks the cycle by detaching every gradient.
warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")


class ESGD(torch.optim.Optimizer):
    """Equilibrated SGD; weight decay is added to the gradient, not to the curvature (our choice)."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, damping: float = 1e-4,
                 update_every: int = 20, samples: int = 1, seed: int = 0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "damping": damping})
        self.update_every = int(update_every)
        self.samples = int(samples)
        self.create_graph = True  # the engine's closure then keeps the graph of the gradient
        self.steps = 0
        self.n_hv = 0
        device = self.param_groups[0]["params"][0].device
        self.generator = torch.Generator(device=device).manual_seed(int(seed))

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"] if p.grad is not None]

    def _accumulate_hv(self, params: list[torch.Tensor]) -> None:
        with_graph = [(p, p.grad) for p in params if p.grad.requires_grad]
        for _ in range(self.samples):
            vs = [torch.randn(p.shape, generator=self.generator, device=p.device, dtype=p.dtype)
                  for p, _ in with_graph]
            hv = torch.autograd.grad([g for _, g in with_graph], [p for p, _ in with_graph],
                                     grad_outputs=vs, retain_graph=True, allow_unused=True)
            for (p, _), h in zip(with_graph, hv):
                if h is not None:
                    self.state[p]["D"].add_(h.detach().square())
            self.n_hv += 1

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        with torch.enable_grad():
            loss = closure()
        params = self._params()
        for p in params:
            if "D" not in self.state[p]:
                self.state[p]["D"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if self.steps % self.update_every == 0:
            self._accumulate_hv(params)
        self.steps += 1
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    p.grad = p.grad.detach()  # frees the graph, breaks the cycle
                    g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                    denom = (self.state[p]["D"] / max(self.n_hv, 1)).sqrt_().add_(group["damping"])
                    p.addcdiv_(g, denom, value=-group["lr"])
        return loss

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        sd["esgd"] = {"steps": self.steps, "n_hv": self.n_hv, "generator": self.generator.get_state()}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        extra = state_dict.get("esgd")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "esgd"})
        if extra is not None:
            self.steps, self.n_hv = int(extra["steps"]), int(extra["n_hv"])
            self.generator.set_state(extra["generator"].cpu())


@register_optimizer("esgd", damping=1e-4, update_every=20, samples=1, seed=0)
def esgd(model: nn.Module, lr: float, weight_decay: float, **args: Any) -> ESGD:
    """ESGD (Dauphin et al. 2015): damping 1e-4 (paper grid {1e-4, 1e-5, 1e-6}), K = 20."""
    return ESGD(model.parameters(), lr=lr, weight_decay=weight_decay, **args)
