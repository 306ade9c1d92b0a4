"""The LLb-SGD study's method family `opt_trace`: plain training (the optimizer is the twist and
comes from the run's `train.optimizer`) that records what the paper's figures need. LLb-SGD
itself is a labelled reconstruction (optimizer.py).

- per-iteration training loss (Fig. 5, Fig. 7's stopping rule, the headline iterations-to-target)
  and, for LLb-SGD, the mean over layers of the live layer rate (Fig. 6); both averaged over
  `trace_every` iterations, kept on the device and copied to the host once per epoch;
- weight trajectories (Fig. 8; its saddle start is the model's `init_scale`): for a network with at
  most `record_max_params` parameters, the flattened weights every `weights_every` iterations; at the end
  the run projects its trajectory on its two principal directions (analysis.trajectory_pca) and
  evaluates the training loss on a `plane_points` x `plane_points` grid of that plane.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ...methods import register
from ...methods.base import Method
from .analysis import plane_grid, trajectory_pca


@register
class OptTrace(Method):
    """Training with the run's optimizer, recording loss / rate traces and (optionally) the
    weight trajectory for the LLb-SGD study (Figs. 5-8)."""

    family = "opt_trace"
    defaults = {"trace_every": 1, "record_max_params": 5000, "weights_every": 1, "plane_points": 15}
    ranges = {"trace_every": (1, None), "record_max_params": (0, None), "weights_every": (1, None),
              "plane_points": (3, 101)}

    def __init__(self, params: dict[str, Any], trainer: Any):
        super().__init__(params, trainer)
        self.loss_trace: list[float] = []
        self.rate_trace: list[float] = []
        self.steps_per_epoch = 0
        self._losses: list[torch.Tensor] = []
        self._rates: list[torch.Tensor] = []
        self._weights: list[torch.Tensor] = []
        self._step = 0

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        self.record = sum(p.numel() for p in model.parameters()) <= self.p["record_max_params"]
        return model

    def sample_weights(self, batch: Any, per_sample_loss: torch.Tensor, progress: float) -> None:
        """Called once per training step (inside the closure, before the update)."""
        self._losses.append(per_sample_loss.mean())
        rate = getattr(self.trainer.optimizer, "mean_rate", None)
        if rate is not None:
            self._rates.append(rate())
        if self.record and self._step % self.p["weights_every"] == 0:
            self._weights.append(self.flat_weights())
        self._step += 1
        return None

    def flat_weights(self) -> torch.Tensor:
        return torch.cat([p.detach().flatten() for p in self.trainer.model.parameters()]).clone()

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        k = self.p["trace_every"]
        self.steps_per_epoch = max(self.steps_per_epoch, len(self._losses))
        for src, dst in ((self._losses, self.loss_trace), (self._rates, self.rate_trace)):
            if src:
                x = torch.stack(src).float()
                n = len(x) // k * k if len(x) >= k else len(x)
                chunks = x[:n].view(-1, k).mean(1) if len(x) >= k else x.mean().view(1)
                dst.extend(chunks.tolist())  # one host copy per epoch
            src.clear()
        return False

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trace_every": self.p["trace_every"], "steps_per_epoch": self.steps_per_epoch,
                               "loss_trace": self.loss_trace, "rate_trace": self.rate_trace}
        if self.record and self._weights:
            self._weights.append(self.flat_weights())
            out["plane"] = self.loss_plane(torch.stack(self._weights).cpu().double().numpy())
        return out

    @torch.no_grad()
    def loss_plane(self, traj: np.ndarray) -> dict[str, Any]:
        """Fig. 8 data of this run: its trajectory in the plane of its two principal directions
        and the training loss (train split, eval mode) on a grid of that plane."""
        pca = trajectory_pca([traj])
        ga, gb = plane_grid(pca["coords"], n=self.p["plane_points"])
        model = self.trainer.model
        names = [n for n, _ in model.named_parameters()]
        shapes = [p.shape for _, p in model.named_parameters()]
        sizes = [p.numel() for _, p in model.named_parameters()]
        data = self.trainer.data
        batch = next(iter(data.subset_batches(data.train_idx, len(data.train_idx))))
        dev = self.trainer.device
        centre = torch.as_tensor(pca["centre"], dtype=torch.float32, device=dev)
        dirs = torch.as_tensor(pca["directions"], dtype=torch.float32, device=dev)
        was = model.training
        model.eval()
        grid = np.zeros((len(gb), len(ga)))
        for j, b in enumerate(gb):
            for i, a in enumerate(ga):
                flat = centre + float(a) * dirs[0] + float(b) * dirs[1]
                params = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
                logits = functional_call(model, params, (batch.x,))
                grid[j, i] = float(F.cross_entropy(logits.float(), data.noisy[batch.idx]))
        model.train(was)
        return {"a": ga.tolist(), "b": gb.tolist(), "loss": grid.tolist(),
                "path": pca["coords"][0].tolist(), "explained": pca["explained"].tolist()}

    def state_dict(self) -> dict[str, Any]:
        return {"loss_trace": self.loss_trace, "rate_trace": self.rate_trace,
                "steps_per_epoch": self.steps_per_epoch, "step": self._step,
                "weights": [w.cpu() for w in self._weights]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss_trace, self.rate_trace = list(state["loss_trace"]), list(state["rate_trace"])
        self.steps_per_epoch, self._step = state["steps_per_epoch"], state["step"]
        self._weights = [w.to(self.trainer.device) for w in state["weights"]]
