"""Fig. 3's iteration analysis on synthetic run records."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from trainrepro.papers.alternation import overhead
from trainrepro.papers.alternation.study import (fig3_iterations, interval, iteration_summary,
                                                 iterations_to_reach, maskt_drop, select_lr)
from trainrepro.report.claims import evaluate_claims
from trainrepro.stats import FAILS, HOLDS, INCONCLUSIVE

from conftest import train_cfg

CLAIMS = Path(__file__).resolve().parent.parent / "src/trainrepro/papers/alternation/claims.yaml"


def run(tmp_path, method, seed, accs, n_active=640, batch=64):
    d = tmp_path / f"{method}{seed}"
    d.mkdir()
    pd.DataFrame({"epoch": range(len(accs)), "n_active": n_active, "test_acc": accs}).to_csv(d / "history.csv")
    (d / "metrics.json").write_text(json.dumps({"config": {"batch_size": batch}}))
    return {"dataset": "digits", "model": "m", "seed": seed, "method": method, "status": "ok",
            "run_dir": str(d)}


def test_iterations_to_reach_counts_optimizer_steps():
    h = pd.DataFrame({"epoch": [0, 1, 2], "n_active": [640, 640, 640], "test_acc": [0.5, 0.8, 0.9]})
    assert iterations_to_reach(h, 0.2, 64) == 20.0      # error 0.2 first at epoch 1: 2 x 10 steps
    assert iterations_to_reach(h, 0.05, 64) != iterations_to_reach(h, 0.05, 64)  # never: NaN


def test_fig3_ratio_saving_and_never_reached(tmp_path):
    runs = pd.DataFrame([
        run(tmp_path, "sgd", 0, [0.5, 0.7, 0.8, 0.85, 0.9]),     # final error 0.10, reached at epoch 4
        run(tmp_path, "i_alt", 0, [0.5, 0.85, 0.9, 0.9, 0.9]),   # reaches 0.10 + tol at epoch 2
        run(tmp_path, "b_alt", 0, [0.1, 0.1, 0.1, 0.1, 0.1]),    # never
    ])
    per = fig3_iterations(runs, tol=0.01)
    i = per[per["method"] == "i_alt"].iloc[0]
    assert i["it_sgd"] == 50 and i["it_method"] == 30 and i["ratio"] == pytest.approx(0.6)
    assert i["saving_pct"] == pytest.approx(40.0) and bool(i["reached"])
    b = per[per["method"] == "b_alt"].iloc[0]
    assert not b["reached"] and b["it_method"] == 50 and b["ratio"] == pytest.approx(1.0)
    s = iteration_summary(per)
    assert s["iteration_ratio"]["value"] == pytest.approx(0.6) and s["i_alt_saving_pct"] == pytest.approx(40.0)
    assert s["b_alt_never_reached"] == 1
    # one run: no interval, so a claim on it cannot be decided
    assert s["iteration_ratio"]["n"] == 1 and s["iteration_ratio"]["lo"] == -math.inf


def test_iteration_ratio_interval_is_the_t_interval_over_runs(tmp_path):
    runs = pd.DataFrame([run(tmp_path, "sgd", k, [0.5, 0.7, 0.8, 0.85, 0.9]) for k in range(3)]
                        + [run(tmp_path, "i_alt", k, acc) for k, acc in enumerate(
                            [[0.5, 0.85, 0.9, 0.9, 0.9], [0.5, 0.7, 0.9, 0.9, 0.9], [0.5, 0.7, 0.8, 0.9, 0.9]])])
    r = iteration_summary(fig3_iterations(runs))["iteration_ratio"]  # ratios 0.6, 0.6, 0.8
    assert r["value"] == pytest.approx(2 / 3) and r["n"] == 3
    half = 4.302652729911275 * np.std([0.6, 0.6, 0.8], ddof=1) / math.sqrt(3)
    assert (r["lo"], r["hi"]) == pytest.approx((2 / 3 - half, 2 / 3 + half))


def grid_runs():
    """Two lr cells per (dataset, model, method): validation and test disagree on the best."""
    rows = []
    for method, cells in {"sgd": {"grid_0.1": (0.90, 0.80), "grid_0.01": (0.85, 0.95)},
                          "i_alt": {"grid_0.1": (0.70, 0.99), "grid_0.01": (0.75, 0.60)}}.items():
        for tag, (val, test) in cells.items():
            for seed in range(3):
                rows.append({"dataset": "digits", "model": "m", "noise": 0.0, "method": method,
                             "cell": f"digits-m-n0-{method}-{tag}", "seed": seed, "status": "ok",
                             "val_acc": val + 0.01 * seed, "test_acc": test})
    return pd.DataFrame(rows)


def test_lr_is_selected_on_validation_never_on_test():
    chosen, table = select_lr(grid_runs())
    assert set(chosen["cell"]) == {"digits-m-n0-sgd-grid_0.1", "digits-m-n0-i_alt-grid_0.01"}
    assert list(chosen.groupby("method")["test_acc"].first().sort_index()) == [0.60, 0.80]  # i_alt, sgd
    assert set(table[table["chosen"]]["tag"]) == {"grid_0.1", "grid_0.01"} and len(table) == 4


def test_lr_selection_skips_a_cell_with_a_diverged_seed_and_keeps_single_cells():
    runs = grid_runs()
    runs.loc[(runs["cell"] == "digits-m-n0-sgd-grid_0.1") & (runs["seed"] == 2), "status"] = "diverged"
    chosen, _ = select_lr(runs)
    assert "digits-m-n0-sgd-grid_0.01" in set(chosen["cell"])
    single = runs[runs["cell"].str.endswith("grid_0.1")]
    assert select_lr(single)[0].equals(single)  # one lr: nothing to choose (the quick profile)


def maskt_run(tmp_path, seed, standard, snapshot):
    d = tmp_path / f"maskt{seed}"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"method_summary": {
        "maskt": {"standard": standard, "snapshot": snapshot}, "maskt_reading": "snapshot"}}))
    return {"dataset": "digits", "model": "m", "method": "i_alt", "seed": seed, "status": "ok",
            "run_dir": str(d)}


def a3_verdict(tmp_path, drops):
    runs = pd.DataFrame([maskt_run(tmp_path, k, 0.9, 0.9 - d) for k, d in enumerate(drops)])
    root = tmp_path / "root"
    (root / "results/alternation").mkdir(parents=True, exist_ok=True)
    (root / "results/alternation/scalars.json").write_text(json.dumps(maskt_drop(runs)))
    claims = [c for c in yaml.safe_load(CLAIMS.read_text())["claims"] if c["id"] == "A3"]
    return evaluate_claims(claims, {"alternation": runs}, root).iloc[0]["verdict"]


def test_a3_is_decided_on_the_maskt_drop_interval(tmp_path):
    assert a3_verdict(tmp_path / "a", [0.040, 0.045, 0.050]) == HOLDS          # 4-5 points
    assert a3_verdict(tmp_path / "b", [-0.001, 0.0, 0.001]) == FAILS           # no drop at all
    assert a3_verdict(tmp_path / "c", [0.0, 0.02, 0.04]) == INCONCLUSIVE       # straddles 1 point
    assert a3_verdict(tmp_path / "d", [0.3, 0.35, 0.4]) == FAILS               # unacceptable


def test_interval_needs_two_values():
    assert interval([]) is None
    assert interval([1.0])["hi"] == math.inf
    assert interval([1.0, 1.0, 1.0]) == {"value": 1.0, "lo": 1.0, "hi": 1.0, "n": 3}


class FakeTrainer:
    """Costs `cost` x the current load per epoch on a fake clock; the load drifts upwards."""

    def __init__(self, cost, world):
        self.cost, self.world = cost, world
        self.method = type("M", (), {"on_epoch_start": lambda self, e: None})()

    def train_epoch(self, epoch):
        self.world["t"] += self.cost * self.world["load"]
        self.world["load"] *= 1.2


def test_interleaved_paired_ratio_is_fair_under_a_load_drift():
    world = {"t": 0.0, "load": 1.0}
    trainers = {"sgd": FakeTrainer(1.0, world), "b_alt": FakeTrainer(1.1, world)}
    times = overhead.interleaved_epoch_times(trainers, 6, 2, lambda: world["t"])
    r = overhead.paired_ratio(times["b_alt"], times["sgd"])
    assert r["n"] == 6 and r["lo"] <= 1.1 <= r["hi"]
    # run one after the other (as the study's cells ran) the drift decides the ratio
    assert np.mean(times["b_alt"][3:]) / np.mean(times["sgd"][:3]) > 2


def test_study_time_ratios_rebuild_recorded_runs_and_time_them(tmp_path, prepared_digits):
    rows = []
    for method, family, params in (("sgd", "fullmodel", {}), ("b_alt", "b_alt", {"warmup_epochs": 1})):
        cfg = train_cfg(dataset="digits", noise=["symmetric_incl", 0.0, 0], method=method,
                        method_family=family, method_params=params, kfold=0, epochs=4)
        d = tmp_path / method
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"config": cfg}))
        rows.append({"dataset": "digits", "model": "mlp", "method": method, "seed": 0, "status": "ok",
                     "run_dir": str(d)})
    out = overhead.study_time_ratios(pd.DataFrame(rows), prepared_digits.parent, torch.device("cpu"),
                                     repeats=3)
    r = out["b_alt_time_ratio"]
    assert r["n"] == 3 and r["lo"] <= r["value"] <= r["hi"] and r["value"] > 0
    assert "epoch 1" in r["setting"]  # timed inside B-alternation's window, after its warm-up


def test_the_paper_registers_the_lr_selection_for_its_tables_and_claims():
    from trainrepro.registry import PAPERS

    picked = PAPERS["alternation"].select_runs(grid_runs())
    assert set(picked["cell"]) == set(select_lr(grid_runs())[0]["cell"])
