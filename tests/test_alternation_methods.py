"""I-alternation, B-alternation, MaskT and DSD through the engine (digits, CPU, seconds)."""
import pytest
import torch

import trainrepro.papers.alternation  # noqa: F401  (registers ht_relu and the methods)
from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import load_prepared
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS
from trainrepro.papers.alternation import alternation as alt_mod
from trainrepro.papers.alternation.units import units_of
from trainrepro.registry import ConfigError

from conftest import train_cfg
from test_engine import json_history


@pytest.fixture(scope="module")
def data(prepared_digits):
    return DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.0, 0)), "cpu")


def cfg(**over):
    base = dict(model="allcnn_small_c", model_args={"width": 8, "activation": "ht_relu"}, epochs=5,
                batch_size=64, lr=0.05, report_epoch="last")
    return train_cfg(**{**base, **over})


FAST = {"warmup_epochs": 1, "min_gap": 1, "patience": 1, "max_gap": 2}


def test_stored_and_snapshot_masks_are_identical_without_augmentation(data):
    stored = Trainer(cfg(), data, METHODS["i_alt"], {**FAST, "store": "stored"})
    snap = Trainer(cfg(), data, METHODS["i_alt"], {**FAST, "store": "snapshot"})
    for t in (stored, snap):
        t.method.on_epoch_start(0)
        t.method.estimate(0)
    idx = data.train_idx[:100]
    x = data.inputs(data.x_pool[idx], False, None)
    a, b = stored.method.masks_for(idx, x), snap.method.masks_for(idx, x)
    assert len(a) == len(units_of(stored.model)) and all(torch.equal(u, v) for u, v in zip(a, b))
    # ... and so is training with them: identical histories
    stored, snap = (Trainer(cfg(), data, METHODS["i_alt"], {**FAST, "store": s}) for s in ("stored", "snapshot"))
    stored.fit(), snap.fit()
    assert [r["train_loss"] for r in stored.history] == [r["train_loss"] for r in snap.history]
    assert stored.method.alternation_epochs == snap.method.alternation_epochs


def test_stored_masks_are_the_free_units_support_at_estimation_and_bitpacked(data):
    t = Trainer(cfg(), data, METHODS["i_alt"], dict(FAST))
    t.method.estimate(0)
    store = t.method.store
    bits = sum(u.numel for u in units_of(t.model))
    assert store.bytes_per_example == -(-bits // 8) and store.total_bytes == store.bytes_per_example * len(data.train_idx)
    assert store.packed.dtype == torch.uint8 and store.packed.device == data.device
    idx = data.train_idx[5:9]
    x = data.inputs(data.x_pool[idx], False, None)
    t.model.eval()
    with torch.no_grad():
        expected = [u.rule(q) for u, q in zip(units_of(t.model), _preacts(t.model, x))]
    assert all(torch.equal(a, b) for a, b in zip(store.read(idx), expected))
    # training with these fixed masks: the engine's forward hook applies them by batch.idx
    t.model.train()
    batch = type("B", (), {"x": x, "idx": idx})()
    t.method.epoch = 1
    with torch.no_grad():
        assert torch.allclose(t.method.forward(t.model, batch), t.model.eval()(x), atol=1e-6)


def _preacts(model, x):
    qs = []
    hooks = [u.register_forward_pre_hook(lambda m, inp: qs.append(inp[0])) for u in units_of(model)]
    model(x)
    for h in hooks:
        h.remove()
    return qs


def test_alternation_epochs_follow_the_plateau_rule(data):
    t = Trainer(cfg(epochs=6), data, METHODS["i_alt"], {"warmup_epochs": 2, "min_gap": 2, "max_gap": 2, "patience": 1})
    rec = t.fit()
    assert rec["method_summary"]["alternation_epochs"] == [2, 4]
    assert [r["phase"] for r in t.history] == [0, 0, 1, 1, 1, 1]
    assert [r["alternations"] for r in t.history] == [0, 0, 1, 1, 2, 2]
    s = rec["method_summary"]
    assert s["mask_bytes_per_example"] > 0 and len(s["estimation_time_s"]) == 2


def test_beta_is_learned_during_warmup_with_ste_and_fixed_without(data):
    for grad, moves in (("ste", True), ("none", False)):
        c = cfg(epochs=1, model_args={"width": 8, "activation": "ht_relu",
                                      "activation_args": {"beta_grad": grad, "beta_init": 0.05}})
        t = Trainer(c, data, METHODS["i_alt"], dict(FAST))
        t.fit()
        betas = torch.cat([u.beta.detach() for u in units_of(t.model)])
        assert bool((betas != 0.05).any()) == moves, grad


@pytest.mark.parametrize("store", ["stored", "snapshot"])
def test_exact_resume_inside_an_alternation_phase(data, tmp_path, store, monkeypatch):
    params = {"warmup_epochs": 1, "min_gap": 2, "max_gap": 3, "patience": 1, "store": store}
    ref = Trainer(cfg(epochs=6), data, METHODS["i_alt"], params, run_dir=tmp_path / "full").fit()
    for limit in (alt_mod.CHECKPOINT_MASK_BYTES, 0):  # 0: stored masks recomputed on resume
        monkeypatch.setattr(alt_mod, "CHECKPOINT_MASK_BYTES", limit)
        run = tmp_path / f"part{limit}"
        # stop after epoch 2: inside the first alternation phase (masks estimated at epoch 1)
        part = Trainer(cfg(epochs=6), data, METHODS["i_alt"], params, run_dir=run)
        part.epochs = 3
        part.write_record = lambda rec: None
        part.fit()
        ck = torch.load(run / "checkpoint.pt", weights_only=False)["method"]
        assert (ck["packed"] is None) == (limit == 0 or store == "snapshot")
        resumed = Trainer(cfg(epochs=6), data, METHODS["i_alt"], params, run_dir=run).fit()
        assert resumed["resumed"] is True
        keys = ["train_loss", "val_loss", "test_acc", "lr", "alternations"]
        assert [[r[k] for k in keys] for r in json_history(tmp_path / "full")] == \
            [[r[k] for k in keys] for r in json_history(run)]
        assert resumed["method_summary"]["alternation_epochs"] == ref["method_summary"]["alternation_epochs"]
        assert resumed["method_summary"]["maskt"] == ref["method_summary"]["maskt"]


@pytest.mark.parametrize("sparse", ["magnitude", "b_alt"])
def test_exact_resume_inside_the_dsd_sparse_phase(data, tmp_path, sparse):
    params = {"dense_frac": 0.2, "sparse_frac": 0.6, "sparse": sparse, "b_apply": "gate"}
    c = cfg(epochs=5, model_args={"width": 8})
    Trainer(c, data, METHODS["dsd"], params, run_dir=tmp_path / "full").fit()
    part = Trainer(c, data, METHODS["dsd"], params, run_dir=tmp_path / "part")
    part.epochs = 2  # stop after epoch 1, the first sparse epoch
    part.write_record = lambda rec: None
    part.fit()
    assert Trainer(c, data, METHODS["dsd"], params, run_dir=tmp_path / "part").fit()["resumed"]
    keys = ["train_loss", "val_loss", "test_acc", "lr", "phase"]
    assert [[r[k] for k in keys] for r in json_history(tmp_path / "full")] == \
        [[r[k] for k in keys] for r in json_history(tmp_path / "part")]


def test_b_alternation_shares_one_mask_per_batch(data):
    t = Trainer(cfg(), data, METHODS["b_alt"], {"warmup_epochs": 0, "b_apply": "replace"})
    t.method.on_epoch_start(0)
    seen = []
    for u in units_of(t.model):
        u.register_forward_hook(lambda m, inp, out: seen.append((inp[0], out)))
    idx = data.train_idx[:16]
    x = data.inputs(data.x_pool[idx], False, None)
    t.method.forward(t.model, type("B", (), {"x": x, "idx": idx})())
    for q, z in seen:
        active = (z != 0) | (q == 0)
        shared = active.all(0) | (~active).all(0)  # every unit on for all examples or off for all
        assert bool(shared.all())
    rec = Trainer(cfg(epochs=2), data, METHODS["b_alt"], {"warmup_epochs": 1, "b_apply": "gate"}).fit()
    assert rec["status"] == "ok" and 0.0 < rec["final"]["b_mask_density"] <= 1.0


def test_maskt_readings(data):
    t = Trainer(cfg(epochs=3), data, METHODS["i_alt"], dict(FAST))
    rec = t.fit()
    m = rec["method_summary"]["maskt"]
    assert set(m) == set(alt_mod.MASKT_READINGS)
    assert m["standard"] == pytest.approx(rec["final"]["test_acc"])
    # masks estimated with the current weights: the snapshot reading is the standard test
    t.method.estimate(3)
    t.method._maskt = None
    m2 = t.method.maskt_results()
    assert m2["snapshot"] == m2["standard"]


def test_dsd_keeps_pruned_connections_exactly_zero_through_the_sparse_phase(data):
    t = Trainer(cfg(epochs=5, model_args={"width": 8}), data, METHODS["dsd"],
                {"dense_frac": 0.2, "sparse_frac": 0.4, "sparsity": 0.5, "redense_lr": 0.1})
    assert t.method.window() == (1, 3)
    checks = []

    def check(opt, args, kwargs):
        if t.method.prune_masks:
            params = t.method.pruned_params()
            checks.append(all(bool((params[n][~mk] == 0).all()) for n, mk in t.method.prune_masks.items()))

    base_lr = t.optimizer.param_groups[0]["lr_scale"]
    state = {}
    orig_phase_change = t.method.on_phase_change

    def spy(phase):
        orig_phase_change(phase)
        if phase == 1:
            state["masks"] = {n: m.clone() for n, m in t.method.prune_masks.items()}
            t.optimizer.register_step_post_hook(check)
    t.method.on_phase_change = spy
    rec = t.fit()
    steps_per_epoch = -(-len(data.train_idx) // 64)
    assert len(checks) == 2 * steps_per_epoch and all(checks)
    # the intended connections: per layer, the k = N (1 - s) largest |w| at pruning time
    for name, mask in state["masks"].items():
        assert abs(mask.float().mean().item() - 0.5) < 0.02, name
    assert rec["method_summary"]["sparsity_realised"] == pytest.approx(0.5, abs=0.01)
    # re-dense: pruned weights are free again (and restarted from zero), lr scaled by 0.1
    w = t.method.pruned_params()
    assert any(bool((w[n][~m] != 0).any()) for n, m in state["masks"].items())
    assert t.optimizer.param_groups[0]["lr_scale"] == pytest.approx(0.1 * base_lr)
    assert [r["phase"] for r in t.history] == [0, 1, 1, 2, 2]


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="min_gap"):
        METHODS["i_alt"].validate_params({"min_gap": 5, "max_gap": 4}, "methods.i_alt")
    with pytest.raises(ConfigError, match="store"):
        METHODS["i_alt"].validate_params({"store": "disk"}, "methods.i_alt")
    with pytest.raises(ConfigError, match="sparse_frac"):
        METHODS["dsd"].validate_params({"dense_frac": 0.8, "sparse_frac": 0.5}, "methods.dsd")
