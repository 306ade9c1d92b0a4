"""MentorNet (Jiang et al., ICML 2018), Algorithm 1 (SPADE), through the sample-weight hook.

    for every mini-batch Xi_t (the engine's loop):
        phi(x_i, y_i, w)  = (loss_i, loss_i - lambda, label, epoch %)     # step 4
        if update curriculum: Theta <- Theta*  (refit DD on the clean subset)  # steps 5-6
        v_Xi = g_m(phi; Theta)   (burn-in: v_i ~ Bernoulli sample dropout)   # step 11
        w   <- w - alpha * grad_w sum_i v_i * loss_i / B                     # step 12 (engine)

lambda is the exponential moving average of the p-th percentile of the mini-batch loss.
The mentor (PD or DD) is fitted by the `mentor` stage (src/trainrepro/mentor, stages/mentor.py)
and reaches a run as `mentor_path` (+ its sha256, so a new mentor re-runs only these cells).
Every paper-vs-code divergence of REFERENCE.md s.1 is a parameter; defaults = the paper.

`mentornet_record` is the DD burn-in StudentNet: plain training (v = 1) that records the
features of the clean-subset samples of every mini-batch of the burn-in period (the first
`record_fraction` of the epochs; it stops there), with v* = 1[noisy == true]. A SPADE update
(steps 5-6) fits on the same train-mode features, recorded in the epoch before it.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...io import atomic_write_bytes
from ...methods.base import Method, TrainerView, register
from ...registry import ConfigError
from .curriculum import PercentileEMA, epoch_percent
from .fit import fit_mentor
from .net import build_mentor, load_mentor, save_mentor
from .outputs import stage_entry


@register
class MentorNetSPADE(Method):
    family = "mentornet"
    defaults = {
        "curriculum": "dd",            # pd: MentorNet PD (Eq. 5/7); dd: data-driven (clean subset)
        "transfer_from": {},           # DD transfer: {target dataset: dataset the mentor is learned
                                       # on}; others use a mentor learned on their own clean subset
        "ema_decay": 0.95,             # paper 0.95; official code 0.5
        "percentile": 0.7,             # paper: cross-validation; code: 0.7 (a misspelled flag
                                       # overrides the intended PD .75/.75/.5, DD .8/.6/.5)
        "burn_in_fraction": 0.2,       # paper: first 20% of epochs (code: epochs 0-16 of 100)
        "burn_in": "bernoulli",        # paper: v_i ~ Bernoulli; code: fixed_fraction of each batch
        "burn_in_drop_rate": 0.5,      # fraction of samples dropped in burn-in (code 0.5)
        "drop_rate_after_burn_in": 0.0,  # paper 0; code 0.05
        "weight_normalisation": "batch",  # sum v*l / B (paper Eq. 1 and code) | / sum v
        "scale_weight_decay": False,   # code: weight decay x sum(v)/B (here: previous epoch's mean v)
        "frozen_epoch": -1,            # code (DD): epoch input frozen at 18 after burn-in; -1 = off
        "update_at": [0.5, 0.64],      # paper: mentor re-learned twice during training, after
                                       # the lr drops (fractions of the epochs); code: never ([])
        "update_steps": 200,           # Adam steps per update (paper: not given), on the train-mode
        "update_lr": 0.01,             # features of the clean subset in the epoch before it
        "update_batch_size": 32,       # (official code's mentor batch)
        "update_lr_decay": 1.0,        # lr x decay every update_lr_decay_steps (1.0 = constant)
        "update_lr_decay_steps": 1000,
        "update_grad_clip": 5.0,       # (official code's clip); 0 = none
        "mentor_path": "",             # set by the train stage from the mentor stage's outputs
        "mentor_sha256": "",
        "mentor_name": "",
    }
    ranges = {"ema_decay": (0.0, 1.0), "percentile": (0.0, 1.0), "burn_in_fraction": (0.0, 1.0),
              "burn_in_drop_rate": (0.0, 1.0), "drop_rate_after_burn_in": (0.0, 1.0),
              "frozen_epoch": (-1, 99), "update_steps": (0, None), "update_lr": (0.0, None),
              "update_batch_size": (1, None), "update_lr_decay": (0.0, 1.0),
              "update_lr_decay_steps": (1, None), "update_grad_clip": (0.0, None)}
    choices = {"curriculum": ["pd", "dd"], "burn_in": ["bernoulli", "fixed_fraction"],
               "weight_normalisation": ["batch", "weights"]}

    @classmethod
    def validate_params(cls, params: dict[str, Any], where: str) -> dict[str, Any]:
        out = super().validate_params(params, where)
        if any(not isinstance(f, (int, float)) or not 0 <= f <= 1 for f in out["update_at"]):
            raise ConfigError(f"{where}.update_at: expected fractions of training in [0, 1]")
        if any(not isinstance(v, str) for v in out["transfer_from"].values()):
            raise ConfigError(f"{where}.transfer_from: expected {{target dataset: source dataset}}")
        return out

    @classmethod
    def resolve_run(cls, spec: Any, results_root: str | Path) -> dict[str, Any]:
        """Method params the train stage adds to a run: the mentor assigned to this run (cell and
        seed: a DD mentor may be the seed's own) and its hash."""
        a = stage_entry(results_root, "assignments.json", spec.run_dir)
        return {"mentor_path": a["path"], "mentor_sha256": a["sha256"], "mentor_name": a["name"]}

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        p = self.p
        if not p["mentor_path"]:
            raise ConfigError("mentornet: no mentor_path; the train stage sets it from the mentor "
                              "stage's results/mentors/assignments.json")
        self.device = trainer.device
        self.mentor, self.meta = load_mentor(p["mentor_path"], self.device)
        self.mentor.requires_grad_(False)
        self.weight_normalisation = p["weight_normalisation"]
        self.ema = PercentileEMA(p["ema_decay"], p["percentile"], self.device)
        epochs = int(trainer.cfg["epochs"])
        self.burn_in_epochs = int(round(p["burn_in_fraction"] * epochs))
        self.update_epochs = sorted({min(epochs - 1, int(round(f * epochs))) for f in p["update_at"]}
                                    - {0})
        own = trainer.cfg.get("dataset")
        self.transfer = p["transfer_from"].get(own, own) != own
        self.updating = (p["curriculum"] == "dd" and not self.transfer and p["update_steps"] > 0
                         and bool(self.update_epochs))
        self.recorder = CleanSubsetRecorder(trainer.data, self.device) if self.updating else None
        self.updates: list[dict[str, Any]] = []
        self.epoch = 0
        self._reset_epoch_stats()

    def _reset_epoch_stats(self) -> None:
        self.v_sum = torch.zeros((), device=self.device)
        self.v_n = 0

    # --- hooks ------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        if self.p["scale_weight_decay"]:
            factor = float(self.v_sum) / self.v_n if self.v_n else 1.0
            for g in self.trainer.optimizer.param_groups:
                g.setdefault("base_weight_decay", g["weight_decay"])
                g["weight_decay"] = g["base_weight_decay"] * factor
        self.epoch = epoch
        self._reset_epoch_stats()
        if (self.updating and epoch in self.update_epochs
                and epoch not in [u["epoch"] for u in self.updates]):
            self.update_mentor(epoch)

    def dropout_mask(self, n: int, rate: float) -> torch.Tensor:
        """Sample dropout: independent Bernoulli(1 - rate) keeps (paper), or exactly
        round(rate * n) samples of the batch dropped (official code)."""
        g = self.trainer.generator
        if self.p["burn_in"] == "bernoulli":
            keep = torch.rand(n, generator=g) >= rate
        else:
            keep = torch.ones(n, dtype=torch.bool)
            keep[torch.randperm(n, generator=g)[:int(round(rate * n))]] = False
        return keep.float().to(self.device)

    def sample_weights(self, batch: Any, per_sample_loss: torch.Tensor, progress: float) -> torch.Tensor:
        loss = per_sample_loss.detach()
        lam = self.ema.update(loss)
        n = loss.shape[0]
        if self.epoch < self.burn_in_epochs:
            v = self.dropout_mask(n, self.p["burn_in_drop_rate"])
        else:
            e = epoch_percent(progress) if self.p["frozen_epoch"] < 0 else self.p["frozen_epoch"]
            with torch.no_grad():
                v = self.mentor(loss, loss - lam, e)
            if self.p["drop_rate_after_burn_in"] > 0:
                v = v * self.dropout_mask(n, self.p["drop_rate_after_burn_in"])
        if self.updating and self.epoch + 1 in self.update_epochs:  # the features of the update
            self.recorder.add(batch.idx, loss, lam, epoch_percent(progress))
        self.v_sum += v.sum()
        self.v_n += n
        return v.detach()

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        if self.recorder is not None:
            self.recorder.end_epoch()
        return False

    def update_mentor(self, epoch: int) -> None:
        """Algorithm 1 steps 5-6: re-learn the DD curriculum from the most recent StudentNet, on
        the clean subset's features of the last epoch: its train-mode losses and the lambda of
        the same steps, as the mentor sees them when it weights a batch."""
        rows = self.recorder.take()
        if not len(rows):
            return
        p = self.p
        fit = {"batch_size": p["update_batch_size"], "lr": p["update_lr"],
               "lr_decay": p["update_lr_decay"], "lr_decay_steps": p["update_lr_decay_steps"],
               "grad_clip": p["update_grad_clip"], "seed": int(self.trainer.cfg["seed"]) * 1000 + epoch}
        for name, prm in self.mentor.named_parameters():  # keep a frozen epoch embedding frozen
            prm.requires_grad_(name != "epoch_emb.weight" or self.mentor.config["epoch_embedding_trainable"])
        with torch.enable_grad():
            stats = fit_mentor(self.mentor, rows_features(rows), rows[:, 3], "bce", fit,
                               steps=int(p["update_steps"]))
        self.mentor.requires_grad_(False)
        self.mentor.clear_cache()
        self.updates.append({"epoch": epoch, **{k: v for k, v in stats.items()}})

    def epoch_metrics(self) -> dict[str, float]:
        return {"mean_weight": float(self.v_sum) / max(self.v_n, 1), "lambda": float(self.ema.value)}

    def summary(self) -> dict[str, Any]:
        return {"mentor": self.p["mentor_name"], "mentor_sha256": self.p["mentor_sha256"],
                "transfer": self.transfer, "burn_in_epochs": self.burn_in_epochs,
                "updates": self.updates}

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict(), "mentor": self.mentor.state_dict(),
                "updates": list(self.updates), "v_sum": self.v_sum, "v_n": self.v_n,
                "epoch": self.epoch,
                "recorder": self.recorder.state_dict() if self.recorder is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.load_state_dict(state["ema"])
        self.mentor.load_state_dict(state["mentor"])
        self.updates = list(state["updates"])
        self.v_sum, self.v_n = state["v_sum"].to(self.device), int(state["v_n"])
        self.epoch = int(state["epoch"])
        if self.recorder is not None:
            self.recorder.load_state_dict(state["recorder"])


class CleanSubsetRecorder:
    """Train-mode MentorNet features of the clean-subset samples of each mini-batch: rows
    (loss, loss - lambda, epoch %, v* = 1[noisy label == true label]), kept per epoch on the CPU."""

    def __init__(self, data: Any, device: torch.device):
        self.is_clean = torch.zeros(len(data.noisy), dtype=torch.bool, device=device)
        self.is_clean[data.clean_idx] = True
        self.correct = data.noisy == data.true
        self.rows: list[torch.Tensor] = []   # this epoch, on the device
        self.kept: list[torch.Tensor] = []   # finished epochs, clean rows only, on the CPU

    def add(self, idx: torch.Tensor, loss: torch.Tensor, lam: torch.Tensor, pct: int) -> None:
        self.rows.append(torch.stack([loss, loss - lam, torch.full_like(loss, float(pct)),
                                      self.correct[idx].float(), self.is_clean[idx].float()], 1))

    def end_epoch(self) -> None:
        if self.rows:
            rows = torch.cat(self.rows)
            self.kept.append(rows[rows[:, 4] > 0, :4].cpu())
            self.rows = []

    def features(self) -> torch.Tensor:
        return torch.cat(self.kept) if self.kept else torch.zeros((0, 4))

    def take(self) -> torch.Tensor:
        """The kept rows, forgotten here."""
        out, self.kept = self.features(), []
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"kept": list(self.kept)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept = list(state["kept"])


def rows_features(rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """Recorder rows -> the inputs `fit_mentor` takes."""
    return {"loss": rows[:, 0], "loss_diff": rows[:, 1], "epoch": rows[:, 2].long()}


@register
class MentorNetRecord(Method):
    """The DD burn-in StudentNet: trains with v = 1 on the noisy labels and records, for the
    clean-subset samples of every mini-batch of the first `record_fraction` of the epochs (the
    paper's burn-in period), (loss, loss - lambda, epoch %, v*); training stops there. With
    `fit` (the mentor stage's fit settings) it then learns the DD mentor from those features
    (BCE to v*) and writes it beside them (mentor.pt), inside the pilot's own worker."""

    family = "mentornet_record"
    defaults = {"ema_decay": 0.95, "percentile": 0.7,
                "record_fraction": 0.2,  # paper: the burn-in period = the first 20% of epochs
                "fit": {}, "net": {}}    # mentor fit settings / MentorNet sizes ({}: no fit)
    ranges = {"ema_decay": (0.0, 1.0), "percentile": (0.0, 1.0), "record_fraction": (0.0, 1.0)}

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        self.device = trainer.device
        self.ema = PercentileEMA(self.p["ema_decay"], self.p["percentile"], self.device)
        self.recorder = CleanSubsetRecorder(trainer.data, self.device)
        # the epochs before the window's end (at least one), as SPADE counts its burn-in
        self.record_epochs = max(1, int(round(self.p["record_fraction"] * int(trainer.cfg["epochs"]))))

    def sample_weights(self, batch: Any, per_sample_loss: torch.Tensor, progress: float) -> None:
        loss = per_sample_loss.detach()
        self.recorder.add(batch.idx, loss, self.ema.update(loss), epoch_percent(progress))
        return None

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        self.recorder.end_epoch()
        done = epoch + 1 >= min(self.record_epochs, self.trainer.epochs)
        if done and self.trainer.run_dir is not None:
            self.write_features(Path(self.trainer.run_dir) / "features.npz")
            if self.p["fit"]:
                self.write_mentor(Path(self.trainer.run_dir) / "mentor.pt")
        return done

    def write_mentor(self, path: Path) -> None:
        """Learn Theta from the burn-in features (Sec. 3.1, DD) and save it with its fit stats."""
        rows = self.recorder.features()
        net = build_mentor(self.p["net"], seed=int(self.p["fit"]["seed"]))
        stats = fit_mentor(net, rows_features(rows), rows[:, 3], "bce", self.p["fit"])
        fitted = [int(rows[:, 2].min()), int(rows[:, 2].max())] if len(rows) else []
        save_mentor(path, net, {"stats": stats, "fitted_epochs": fitted})

    def features(self) -> np.ndarray:
        return self.recorder.features().numpy()

    def write_features(self, path: Path) -> None:
        f = self.features()
        buf = io.BytesIO()
        np.savez(buf, loss=f[:, 0], loss_diff=f[:, 1], epoch=f[:, 2], target=f[:, 3])
        atomic_write_bytes(path, buf.getvalue())

    def summary(self) -> dict[str, Any]:
        f = self.features()
        return {"recorded_rows": int(len(f)), "recorded_epochs": self.record_epochs,
                "clean_fraction": float(f[:, 3].mean()) if len(f) else None}

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict(), "recorder": self.recorder.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.load_state_dict(state["ema"])
        self.recorder.load_state_dict(state["recorder"])
