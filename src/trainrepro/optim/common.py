"""Pieces shared by the optimizers written here (Path-SGD, ESGD, and papers' optimizers)."""
from __future__ import annotations

from typing import Any

import torch


def sgd_direction(p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], weight_decay: float,
                  momentum: float, dampening: float = 0.0, nesterov: bool = False) -> torch.Tensor:
    """torch.optim.SGD's step direction d_p (L2 weight decay, momentum, Nesterov), op for op,
    so that `p.add_(d_p, alpha=-lr)` is torch's SGD update bit for bit."""
    d = g.add(p, alpha=weight_decay) if weight_decay != 0 else g
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = torch.clone(d).detach()
        else:
            buf.mul_(momentum).add_(d, alpha=1 - dampening)
        d = d.add(buf, alpha=momentum) if nesterov else buf
    return d
