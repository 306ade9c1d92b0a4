"""The MentorNet network of the paper's Fig. 1 (sizes as in the official code, REFERENCE.md s.1).

Input per sample: loss, loss - lambda, label, epoch percentage (0..99). The label (fed as 0
in the official code) and the epoch go through embeddings; [loss, loss - lambda] goes
through a bidirectional LSTM of one time step whose cell states are used. With one step
and zero initial state the cell state is c = sigmoid(W_i z + b_i) * tanh(W_g z + b_g) (the
forget and output gates drop out), which is what `_BiLSTMStep` computes directly.
concat -> fc `fc_hidden` tanh -> fc 1 -> sigmoid.

An epoch-embedding row that no fit has seen is a random vector, so an epoch input without
fitted data is read from the latest fitted epoch at or before it (`epoch_map`, updated by
every fit): a DD mentor learned on the burn-in epochs 0-19 answers epoch 60 as epoch 19, the
official code's "epoch input frozen at 18 after burn-in" generalised. `unfitted_epochs: raw`
feeds the raw epoch instead (the random row).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ...io import load_torch_file, torch_save
from ...registry import DataIntegrityError

NET_DEFAULTS: dict[str, Any] = {
    "label_embedding": 2,        # code: 2 x 2 label embedding
    "num_labels": 2,             # the code always feeds label 0
    "epoch_embedding": 5,        # code: 100 x 5 epoch embedding
    "lstm_hidden": 1,            # code: 1 unit per direction
    "fc_hidden": 20,             # fc1: 20, tanh
    "epoch_embedding_trainable": True,  # paper: an embedding layer (learned); code: frozen random
    "unfitted_epochs": "latest_fitted",  # paper: silent; latest_fitted | raw (see module doc)
}
UNFITTED_EPOCHS = ["latest_fitted", "raw"]


class _BiLSTMStep(nn.Module):
    """Cell states of a bidirectional LSTM run for one time step from zero state; the two
    directions' input-gate and cell-candidate weights are one Linear (one matmul)."""

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.gates = nn.Linear(in_features, 4 * hidden)  # [i_fw, g_fw, i_bw, g_bw]
        self.hidden = hidden

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a = self.gates(z).view(-1, 2, 2, self.hidden)     # (B, direction, gate, hidden)
        c = torch.sigmoid(a[:, :, 0]) * torch.tanh(a[:, :, 1])
        return c.reshape(-1, 2 * self.hidden)             # [c_fw, c_bw]


class MentorNet(nn.Module):
    """g_m(z; Theta): per-sample weight in (0, 1) from (loss, loss - lambda, label, epoch %)."""

    def __init__(self, label_embedding: int = 2, num_labels: int = 2, epoch_embedding: int = 5,
                 lstm_hidden: int = 1, fc_hidden: int = 20, epoch_embedding_trainable: bool = True,
                 unfitted_epochs: str = "latest_fitted"):
        super().__init__()
        if unfitted_epochs not in UNFITTED_EPOCHS:
            raise ValueError(f"unfitted_epochs: {unfitted_epochs!r} not in {UNFITTED_EPOCHS}")
        self.config = {"label_embedding": label_embedding, "num_labels": num_labels,
                       "epoch_embedding": epoch_embedding, "lstm_hidden": lstm_hidden,
                       "fc_hidden": fc_hidden, "epoch_embedding_trainable": epoch_embedding_trainable,
                       "unfitted_epochs": unfitted_epochs}
        self.label_emb = nn.Embedding(num_labels, label_embedding)
        self.epoch_emb = nn.Embedding(100, epoch_embedding)
        self.epoch_emb.weight.requires_grad_(epoch_embedding_trainable)
        self.lstm = _BiLSTMStep(2, lstm_hidden)
        self.fc1 = nn.Linear(label_embedding + epoch_embedding + 2 * lstm_hidden, fc_hidden)
        self.fc2 = nn.Linear(fc_hidden, 1)
        # epoch input -> embedding row; `fitted` = rows some fit has trained (none yet)
        self.register_buffer("fitted", torch.zeros(100, dtype=torch.bool))
        self.register_buffer("epoch_map", torch.arange(100))
        self._const_cache: dict[int, torch.Tensor] = {}
        self._rows = list(range(100))  # epoch_map on the host: no device sync in the step

    def mark_fitted(self, epochs: torch.Tensor) -> None:
        """Record the epoch inputs a fit trains on and re-point every other epoch input at the
        latest fitted one at or before it (the earliest fitted one before the first)."""
        self.fitted[epochs.long().clamp(0, 99).unique().to(self.fitted.device)] = True
        if self.config["unfitted_epochs"] == "raw":
            return
        rows = torch.nonzero(self.fitted).squeeze(1)
        pos = torch.searchsorted(rows, torch.arange(100, device=rows.device), right=True) - 1
        self.epoch_map.copy_(rows[pos.clamp(min=0)])
        self._rows = self.epoch_map.tolist()
        self.clear_cache()

    def logits(self, loss: torch.Tensor, loss_diff: torch.Tensor, epoch: torch.Tensor | int,
               label: torch.Tensor | None = None) -> torch.Tensor:
        n = loss.shape[0]
        dev = loss.device
        if not torch.is_tensor(epoch):
            epoch = torch.full((n,), int(epoch), dtype=torch.long, device=dev)
        epoch = self.epoch_map[epoch.long().clamp(0, 99)]
        if label is None:
            label = torch.zeros(n, dtype=torch.long, device=dev)
        z = torch.stack([loss.float(), loss_diff.float()], 1)
        h = torch.cat([self.label_emb(label), self.epoch_emb(epoch), self.lstm(z)], 1)
        return self.fc2(torch.tanh(self.fc1(h))).squeeze(1)

    def forward(self, loss: torch.Tensor, loss_diff: torch.Tensor, epoch: torch.Tensor | int,
                label: torch.Tensor | None = None) -> torch.Tensor:
        if label is None and not torch.is_tensor(epoch):
            return torch.sigmoid(self._logits_shared(loss, loss_diff, int(epoch)))
        return torch.sigmoid(self.logits(loss, loss_diff, epoch, label))

    def _logits_shared(self, loss: torch.Tensor, loss_diff: torch.Tensor, epoch: int) -> torch.Tensor:
        """`logits` when the whole batch shares label 0 and one epoch (the training step): the
        embeddings' part of fc1 is one vector per epoch percentage, so fc1 only multiplies the
        LSTM states. Without gradients that vector is cached (cleared when weights change)."""
        nl, ne = self.label_emb.embedding_dim, self.epoch_emb.embedding_dim
        w = self.fc1.weight
        e = self._rows[min(max(epoch, 0), 99)]
        const = self._const_cache.get(e) if not torch.is_grad_enabled() else None
        if const is None:
            const = self.fc1.bias + w[:, :nl] @ self.label_emb.weight[0] + w[:, nl:nl + ne] @ self.epoch_emb.weight[e]
            if not torch.is_grad_enabled():
                self._const_cache[e] = const
        c = self.lstm(torch.stack([loss.float(), loss_diff.float()], 1))
        return self.fc2(torch.tanh(torch.addmm(const, c, w[:, nl + ne:].t()))).squeeze(1)

    def clear_cache(self) -> None:
        """Forget cached embedding contributions (call after the weights change)."""
        self._const_cache = {}

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self.clear_cache()
        out = super().load_state_dict(*args, **kwargs)
        self._rows = self.epoch_map.tolist()
        return out

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "MentorNet":
        self.clear_cache()  # .to(device) / .float() move the weights
        return super()._apply(fn, *args, **kwargs)


def build_mentor(net_cfg: dict[str, Any] | None = None, seed: int = 0) -> MentorNet:
    """A freshly initialised MentorNet (deterministic given `seed`)."""
    cfg = {**NET_DEFAULTS, **(net_cfg or {})}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MentorNet(**cfg)


def save_mentor(path: str | Path, net: MentorNet, meta: dict[str, Any]) -> None:
    """Weights + config + plain-data metadata, loadable with torch.load(weights_only=True)."""
    torch_save(path, {"format": "trainrepro.mentornet/1", "config": dict(net.config),
                      "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
                      "meta": meta})


def load_mentor(path: str | Path, device: torch.device | str = "cpu") -> tuple[MentorNet, dict[str, Any]]:
    """(MentorNet in eval mode on `device`, metadata) from a file written by `save_mentor`."""
    blob = load_torch_file(path, "cpu", "a MentorNet written by the mentor stage (re-run it: "
                           "python stages/mentor.py)")
    if not isinstance(blob, dict) or blob.get("format") != "trainrepro.mentornet/1":
        raise DataIntegrityError(f"{path}: not a MentorNet file (no format "
                                 "'trainrepro.mentornet/1'); re-run the mentor stage")
    net = MentorNet(**blob["config"])
    net.load_state_dict(blob["state_dict"])
    return net.to(device).eval(), blob.get("meta", {})
