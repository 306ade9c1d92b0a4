"""Positive hard-thresholding eta*(q; beta) (Eq. 9) as a module, and its binary support (Eq. 12).

    mask rule   "gt"  m = 1[q > beta]        (Eq. 9 / Eq. 12, the default)
                "sq"  m = 1[q^2 > beta]      (Eq. 38 read literally; symmetric in the sign of q)
    output      "q"   z = m * q              (Eq. 9, the default)
                "q_minus_beta"  z = m * (q - beta)   (Eq. 2: diag(m)(Wz - beta); with rule "gt"
                                                      this is exactly ReLU(q - beta))

beta is one learnable threshold per channel (conv input (C, H, W)) or per unit (fc input (F,)).
How beta is learned. Under the Eq. 9 output, z does not depend on beta except through the
step m, so its true gradient is zero almost everywhere. The paper says beta is "initialized"
by the plain-SGD warm-up, as the masks are. `beta_grad` is the switch:
    "ste"   (default) beta gets the straight-through gradient of the ReLU form, dz/dbeta := -m
            (the gradient it would have under ReLU(q - beta)), so the warm-up moves it;
            the forward value is still m * q.
    "none"  beta gets no gradient and stays at `beta_init` (then rule "gt" with beta = 0 is
            exactly ReLU).
Under the Eq. 2 output beta has its true gradient -m in either case. Weight decay applies to
beta as to every parameter (the engine's optimizer sees it like a bias).

Modes (set by the alternation methods; see alternation.py):
    free       the nonlinearity of each example (standard training and testing);
    fixed      `unit.fixed_mask` (broadcastable to q: per example (B, *shape) or per batch
               (*shape)) replaces the rule: with every unit fixed the network is affine in x;
    record     in free mode, also appends the computed mask (0 / 1 in q's dtype) to `unit.record`;
    batch      B-alternation: one mask per mini-batch from this batch's pre-activations
               (set by `unit.batch_rule`, a callable (q, unit) -> mask of shape `shape`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ...models.activations import register_activation

MASK_RULES = ("gt", "sq")
OUTPUTS = ("q", "q_minus_beta")
BETA_GRADS = ("ste", "none")


class _MaskedIdentity(torch.autograd.Function):
    """z = m * q with dz/dq = m and the straight-through dz/dbeta := -m (one kernel each way)."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, beta: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(m)
        ctx.beta_shape = beta.shape
        return q * m  # (torch.where / masked_fill are several times slower on CPU)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (m,) = ctx.saved_tensors
        gq = grad * m
        gbeta = None
        if ctx.needs_input_grad[1]:
            dims = [d for d in range(gq.ndim) if d != 1]
            gbeta = -gq.sum(dim=dims).view(ctx.beta_shape)
        return gq, gbeta, None


class HardThreshold(nn.Module):
    """eta*(q; beta) with per-channel beta; see the module docstring for the switches."""

    def __init__(self, shape: tuple[int, ...], mask_rule: str = "gt", output: str = "q",
                 beta_grad: str = "ste", beta_init: float = 0.0):
        super().__init__()
        if mask_rule not in MASK_RULES or output not in OUTPUTS or beta_grad not in BETA_GRADS:
            raise ValueError(f"bad hard-threshold switches {mask_rule!r}, {output!r}, {beta_grad!r}")
        self.shape = tuple(int(s) for s in shape)
        self.mask_rule, self.output, self.beta_grad = mask_rule, output, beta_grad
        self.beta = nn.Parameter(torch.full((self.shape[0],), float(beta_init)),
                                 requires_grad=beta_grad == "ste" or output == "q_minus_beta")
        self.fixed_mask: torch.Tensor | None = None
        self.record: list[torch.Tensor] | None = None
        self.batch_rule: Callable[[torch.Tensor, "HardThreshold"], torch.Tensor] | None = None

    @property
    def numel(self) -> int:
        """Units of this layer per example (bits of its support)."""
        n = 1
        for s in self.shape:
            n *= s
        return n

    def beta_view(self) -> torch.Tensor:
        """beta shaped to broadcast against q of shape (B, *shape)."""
        return self.beta.view(-1, *([1] * (len(self.shape) - 1)))

    def rule(self, q: torch.Tensor) -> torch.Tensor:
        """The support m (bool, same shape as q) under this unit's mask rule."""
        b = self.beta_view().detach().to(q.dtype)
        return q > b if self.mask_rule == "gt" else q * q > b

    def mask(self, q: torch.Tensor) -> torch.Tensor:
        """`rule(q)` as 0 / 1 in q's dtype: the same comparison written into a float tensor (one
        kernel). On CPU a bool-valued compare is 4x slower, and a float-by-bool multiply 6x
        slower than float-by-float, so the masks stay in q's dtype."""
        b = self.beta_view().detach().to(q.dtype)
        return torch.gt(q if self.mask_rule == "gt" else q * q, b, out=torch.empty_like(q))

    def apply_mask(self, q: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """z = m * q (Eq. 9) or m * (q - beta) (Eq. 2), with the straight-through beta gradient;
        a bool (or other-dtype) m is cast to q's dtype first (one kernel, not one per use)."""
        if m.dtype != q.dtype:
            m = m.to(q.dtype)
        if self.output == "q_minus_beta":
            return (q - self.beta_view().to(q.dtype)) * m
        if q.requires_grad or self.beta.requires_grad:  # d/dbeta = -m: the ReLU form's gradient
            return _MaskedIdentity.apply(q, self.beta.to(q.dtype), m)
        return q * m

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        if self.fixed_mask is not None:
            return self.apply_mask(q, self.fixed_mask)
        if self.batch_rule is not None:
            return self.apply_mask(q, self.batch_rule(q.detach(), self))
        m = self.mask(q.detach())
        if self.record is not None:
            self.record.append(m)
        return self.apply_mask(q, m)

    def extra_repr(self) -> str:
        return (f"shape={self.shape}, mask_rule={self.mask_rule}, output={self.output}, "
                f"beta_grad={self.beta_grad}")


@register_activation("ht_relu", choices={"mask_rule": list(MASK_RULES), "output": list(OUTPUTS),
                                         "beta_grad": list(BETA_GRADS)},
                     mask_rule="gt", output="q", beta_grad="ste", beta_init=0.0)
def ht_relu(shape: tuple[int, ...], mask_rule: str, output: str, beta_grad: str,
            beta_init: float) -> HardThreshold:
    return HardThreshold(shape, mask_rule, output, beta_grad, beta_init)


def units_of(model: nn.Module) -> list[HardThreshold]:
    """The hard-threshold units of `model`, in module order (= forward order in our models)."""
    return [m for m in model.modules() if isinstance(m, HardThreshold)]
