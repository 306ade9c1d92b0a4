"""The engine: every hook is exercised by a small test method, plus resume, divergence and
the reported-epoch rule."""
import json
import math

import pytest
import torch
import torch.nn as nn
from conftest import train_cfg

from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import load_prepared
from trainrepro.engine import Trainer, reported_metrics
from trainrepro.methods import METHODS
from trainrepro.methods.base import Method
from trainrepro.optim import register_optimizer


@pytest.fixture(scope="module")
def data(prepared_digits):
    return DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0)), "cpu")


def fit(data, method_cls=METHODS["fullmodel"], params=None, run_dir=None, **cfg):
    return Trainer(train_cfg(**cfg), data, method_cls, params or {}, run_dir=run_dir).fit()


class ZeroWeights(Method):
    """sample_weights: all weights 0 -> no parameter may move (weight decay off)."""
    family = "test_zero"

    def sample_weights(self, batch, per_sample_loss, progress):
        assert not per_sample_loss.requires_grad
        self.progress_seen = progress
        return torch.zeros_like(per_sample_loss)


def test_sample_weights_hook_scales_the_loss(data):
    t = Trainer(train_cfg(weight_decay=0.0, epochs=1), data, ZeroWeights, {})
    before = [p.detach().clone() for p in t.model.parameters()]
    t.fit()
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))
    assert 0.0 <= t.method.progress_seen < 1.0


class FirstHundred(Method):
    """active_subset + phase: phase 0 trains on 100 samples, phase 1 on everything."""
    family = "test_subset"

    def __init__(self, params, trainer):
        super().__init__(params, trainer)
        self.changes = []

    def active_subset(self, epoch):
        return self.trainer.data.train_idx[:100] if epoch == 0 else None

    def phase(self, epoch):
        return 0 if epoch == 0 else 1

    def on_phase_change(self, phase):
        self.changes.append(phase)
        self.trainer.restart_schedule(1)


def test_active_subset_and_phase_change_hooks(data):
    t = Trainer(train_cfg(epochs=3, schedule="cosine"), data, FirstHundred, {})
    t.fit()
    assert [r["n_active"] for r in t.history] == [100, len(data.train_idx), len(data.train_idx)]
    assert t.method.changes == [1]
    assert t.history[1]["lr"] == pytest.approx(0.1)  # schedule restarted at the phase change


class FlipLoss(Method):
    """loss hook: trains towards label (y + 1) mod K; accuracy on the shifted labels rises."""
    family = "test_loss"

    def loss(self, logits, targets, batch):
        return nn.functional.cross_entropy(logits, (targets + 1) % logits.shape[1], reduction="none")


def test_loss_hook_replaces_the_objective(prepared_digits):
    clean = DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.0, 0)), "cpu")
    t = Trainer(train_cfg(epochs=5), clean, FlipLoss, {})
    t.fit()
    preds = t.predict(clean.train_idx).argmax(1)
    shifted = (clean.true[clean.train_idx] + 1) % 10
    assert (preds == shifted).float().mean() > 0.8


class Wrapped(Method):
    """wrap_model + on_epoch_end (stop early); the optimizer comes from the registry."""
    family = "test_wrap"

    def wrap_model(self, model):
        self.extra = nn.Parameter(torch.zeros(1))
        model.register_parameter("test_extra", self.extra)
        return model

    def on_epoch_end(self, epoch, metrics):
        self.seen = metrics["val_acc"]
        return epoch == 1


def test_wrap_model_optimizer_and_epoch_end_hooks(data):
    t = Trainer(train_cfg(epochs=5, optimizer="adam", optimizer_args={}, lr=1e-3), data, Wrapped, {})
    t.fit()
    assert isinstance(t.optimizer, torch.optim.Adam)
    assert any(p is t.method.extra for g in t.optimizer.param_groups for p in g["params"])
    assert len(t.history) == 2 and t.method.seen == t.history[-1]["val_acc"]


def test_non_finite_loss_marks_the_run_diverged_with_its_epoch(data, tmp_path):
    rec = fit(data, lr=1e12, epochs=4, run_dir=tmp_path / "run")
    assert rec["status"] == "diverged" and rec["diverged_epoch"] == 0
    assert rec["reported"] == {}
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["status"] == "diverged"


def test_run_record_carries_config_seed_versions_device_time_memory(data, tmp_path):
    rec = fit(data, run_dir=tmp_path / "r", epochs=2)
    for key in ("config", "seed", "versions", "device", "wall_time_s", "peak_memory_mb", "status"):
        assert key in rec
    assert rec["status"] == "ok" and rec["reported"]["rule"] == "best_val"
    hist = (tmp_path / "r" / "history.csv").read_text().splitlines()
    assert hist[0].startswith("epoch,phase,lr") and len(hist) == 3
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_cpu_training_is_deterministic(data):
    a = Trainer(train_cfg(epochs=2), data, METHODS["fullmodel"], {})
    b = Trainer(train_cfg(epochs=2), data, METHODS["fullmodel"], {})
    a.fit(), b.fit()
    keys = ["train_loss", "val_loss", "test_acc"]
    assert [[r[k] for k in keys] for r in a.history] == [[r[k] for k in keys] for r in b.history]


def test_resume_from_a_checkpoint_gives_identical_metrics(data, tmp_path):
    full = Trainer(train_cfg(epochs=4), data, METHODS["fullmodel"], {}, run_dir=tmp_path / "full")
    ref = full.fit()
    # Interrupted run: stop after epoch 1 keeping the checkpoint, then a fresh Trainer resumes.
    part = Trainer(train_cfg(epochs=4), data, METHODS["fullmodel"], {}, run_dir=tmp_path / "part")
    part.epochs = 2  # train two epochs only; skip the record (writing it deletes the checkpoint)
    part.write_record = lambda rec: None
    part.fit()
    assert (tmp_path / "part" / "checkpoint.pt").exists()
    resumed = Trainer(train_cfg(epochs=4), data, METHODS["fullmodel"], {}, run_dir=tmp_path / "part").fit()
    assert resumed["resumed"] is True
    keys = ["train_loss", "val_loss", "val_acc", "test_loss", "test_acc", "lr"]
    assert [[r[k] for k in keys] for r in full.history] == \
        [[r[k] for k in keys] for r in json_history(tmp_path / "part")]
    assert resumed["reported"] == ref["reported"]


def json_history(run_dir):
    import pandas as pd

    return pd.read_csv(run_dir / "history.csv").to_dict("records")


def test_reported_epoch_rules_use_validation_only():
    hist = [{"epoch": e, "val_acc": v, "val_loss": 1 - v, "test_acc": t, "test_loss": 0.0}
            for e, v, t in [(0, 0.5, 0.9), (1, 0.8, 0.1), (2, 0.7, 0.95)]]
    assert reported_metrics(hist, "last", 1)["test_acc"] == 0.95
    best = reported_metrics(hist, "best_val", 1)
    assert best["epoch"] == 1 and best["test_acc"] == 0.1  # chosen by validation, not by test
    assert reported_metrics(hist, "mean_last_k", 2)["test_acc"] == pytest.approx(0.525)
    assert math.isclose(reported_metrics(hist, "mean_last_k", 2)["val_acc"], 0.75)


class RecordForward(Method):
    """forward hook: sees every training batch (indices included) and returns its logits."""
    family = "test_forward"

    def __init__(self, params, trainer):
        super().__init__(params, trainer)
        self.seen = []

    def forward(self, net, batch):
        self.seen.append(batch.idx.clone())
        return net(batch.x) * 0.0  # constant logits: the loss is log K at every step


def test_forward_hook_receives_the_batch_indices_and_supplies_the_logits(data):
    t = Trainer(train_cfg(epochs=1), data, RecordForward, {})
    t.fit()
    seen = torch.cat(t.method.seen)
    assert sorted(seen.tolist()) == sorted(data.train_idx.tolist())  # each example once per epoch
    assert t.history[0]["train_loss"] == pytest.approx(math.log(10), rel=1e-5)


@register_optimizer("test_closure_sgd", scale=0.5)
def closure_sgd(model, lr, weight_decay, scale=0.5):
    """SGD that counts closure calls and halves its per-group lr_scale at its first step."""
    class Counting(torch.optim.SGD):
        calls = 0
        losses: list = []

        def step(self, closure):
            loss = closure()
            Counting.calls += 1
            self.losses.append(float(loss.detach()))
            for g in self.param_groups:
                if g["lr_scale"] == 1.0:          # an adaptive optimizer's per-group rate
                    g["lr_scale"] = scale
                    g["lr"] *= scale
            return super().step()

    return Counting(model.parameters(), lr=lr, weight_decay=weight_decay)


def test_optimizer_gets_the_loss_through_step_closure_once_per_step(data):
    t = Trainer(train_cfg(epochs=2, optimizer="test_closure_sgd", optimizer_args={},
                          batch_size=128), data, METHODS["fullmodel"], {})
    t.fit()
    steps = 2 * math.ceil(len(data.train_idx) / 128)
    assert type(t.optimizer).calls == steps
    assert all(math.isfinite(v) for v in t.optimizer.losses)


def test_schedule_never_overwrites_a_per_group_lr_scale(data):
    t = Trainer(train_cfg(epochs=3, optimizer="test_closure_sgd", optimizer_args={},
                          schedule="cosine"), data, METHODS["fullmodel"], {})
    t.fit()
    g = t.optimizer.param_groups[0]
    assert g["lr_scale"] == 0.5
    # the logged rate is set at the epoch start: base x cosine factor x lr_scale
    for row in t.history[1:]:
        factor = 0.5 * (1 + math.cos(math.pi * row["epoch"] / 3))
        assert row["lr"] == pytest.approx(0.1 * factor * 0.5)
