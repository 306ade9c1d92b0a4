"""Fig. 3's iteration analysis on synthetic run records."""
import json

import pandas as pd
import pytest

from trainrepro.papers.alternation.study import fig3_iterations, iteration_summary, iterations_to_reach


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
    assert s["iteration_ratio"] == pytest.approx(0.6) and s["i_alt_saving_pct"] == pytest.approx(40.0)
    assert s["b_alt_never_reached"] == 1
