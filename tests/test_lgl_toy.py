"""LGL toy study (Fig. 2) and analysis helpers: the Gaussian generator's statistics, the toy
dataset's splits, the 'faster' comparison, and the entropy-rank probe."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from trainrepro import stats
from trainrepro.data.sources import GAUSSIAN_LAYOUTS, gaussian_blobs
from trainrepro.papers.lgl import method as lgl_method
from trainrepro.papers.lgl.analysis import entropy_analysis, normalised_rank
from trainrepro.papers.lgl.params import toy_params, validate_toy
from trainrepro.papers.lgl.toy import (
    iterations_to,
    pairwise_faster,
    sign_test,
    toy_dataset,
    toy_job,
    toy_summary,
)
from trainrepro.registry import ConfigError


@pytest.mark.parametrize("layout", ["separable", "overlapping"])
def test_gaussian_blobs_have_the_layout_means_and_identity_covariance(layout):
    x, y = gaussian_blobs(layout, 4000, seed=1)
    assert x.shape == (12000, 2) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [4000, 4000, 4000]
    for c, centre in enumerate(GAUSSIAN_LAYOUTS[layout]):
        xc = x[y == c]
        assert np.allclose(xc.mean(0), centre, atol=0.06)
        assert np.allclose(np.cov(xc.T), np.eye(2), atol=0.08)


def test_layouts_separable_far_apart_overlapping_close():
    sep = GAUSSIAN_LAYOUTS["separable"]
    ovl = GAUSSIAN_LAYOUTS["overlapping"]
    dist = lambda c: min(np.linalg.norm(a - b) for i, a in enumerate(c) for b in c[i + 1:])
    assert dist(sep) > 6 and dist(ovl) < 2.5


def test_gaussian_blobs_are_seeded():
    a, _ = gaussian_blobs("separable", 10, seed=3)
    b, _ = gaussian_blobs("separable", 10, seed=3)
    c, _ = gaussian_blobs("separable", 10, seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_toy_dataset_evaluates_on_the_whole_training_set():
    ds = toy_dataset("separable", 200, 0, 0.25)
    assert len(ds.x_test) == 150 and len(ds.x_pool) == 450
    assert np.array_equal(ds.val_idx, ds.train_idx) and len(ds.train_idx) == 450
    assert ds.num_classes == 3 and not ds.is_image


def test_toy_separable_geometry_is_fig_2g():
    """Old behaviour caught: the toy's separable clusters sat ~7 sd apart (centres [0, 4],
    [-3.5, -2], [3.5, -2]), far outside Fig. 2 (g)'s axes (x -2..3, y -3..3), so no sample lay
    near another cluster. Now the centres lie inside those axes, clusters touch (a few % of the
    points are nearer another cluster's centre) and the overlapping layout still overlaps more."""
    p = toy_params({})
    sep, ovl = np.array(p["centres"]["separable"]), np.array(p["centres"]["overlapping"])
    assert ((sep[:, 0] >= -2) & (sep[:, 0] <= 3) & (sep[:, 1] >= -3) & (sep[:, 1] <= 3)).all()
    ds = toy_dataset("separable", 2000, 0, 0.0, p["centres"]["separable"])
    nearest = np.linalg.norm(ds.x_pool[:, None, :] - sep[None], axis=2).argmin(1)
    confusable = float(np.mean(nearest != ds.y_pool))
    assert 0.02 < confusable < 0.2
    assert np.allclose([ds.x_pool[ds.y_pool == c].mean(0) for c in range(3)], sep, atol=0.1)
    dist = lambda c: min(np.linalg.norm(a - b) for i, a in enumerate(c) for b in c[i + 1:])
    assert dist(ovl) < dist(sep) < 4


def test_toy_lgl_does_not_reinitialise_the_shallow_nets_classifier(monkeypatch):
    """Old behaviour caught: the toy's LGL re-drew the untrained classes' softmax rows (the
    method's deep-net default), which Sec. 4.2 does only "when DNN has many layers"."""
    calls = []
    real = lgl_method.reinit_classifier_rows
    monkeypatch.setattr(lgl_method, "reinit_classifier_rows",
                        lambda *a, **k: (calls.append(a[1]), real(*a, **k)))
    setting = {"name": "a", "layout": "separable", "hidden": [8]}
    p = {**toy_params({}), "methods": ["lgl"], "iterations": 30, "seeds": [0],
         "lgl": {"strategy": "r", "steps": 2}}     # Sec. 5.1: 2 clusters, then the third
    toy_job(p, setting, 0)
    assert calls == []
    toy_job({**p, "reinit_untrained": True}, setting, 0)
    assert len(calls) == 1 and len(calls[0]) == 1              # the one untrained class


def test_iterations_to_target_and_pairwise_faster():
    its = np.array([10, 20, 30, 40])
    assert iterations_to(np.array([1.0, 0.5, 0.3, 0.2]), its, 0.3) == 30
    assert iterations_to(np.array([1.0, 0.9]), its[:2], 0.3) == math.inf
    fast = (its, np.array([0.8, 0.4, 0.2, 0.1]))
    slow = (its, np.array([1.0, 0.9, 0.5, 0.3]))
    assert pairwise_faster(fast, slow) == 1.0       # target 0.3: fast at 30, slow at 40
    assert pairwise_faster(slow, fast) == 0.0
    assert pairwise_faster(fast, fast) == 0.5


def test_toy_summary_counts_spl_inv_against_spl_on_separable_settings():
    rows = []
    for setting, layout in (("a", "separable"), ("c", "overlapping")):
        for seed in (0, 1):
            for m, curve in {"baseline": [1.0, 0.6, 0.4], "spl": [1.0, 0.9, 0.7],
                             "spl_inv": [0.7, 0.4, 0.3], "lgl": [0.8, 0.6, 0.3, 0.2, 0.1]}.items():
                for e, loss in enumerate(curve):
                    phase = int(m == "lgl" and e >= 2)
                    rows.append({"setting": setting, "layout": layout, "method": m, "seed": seed,
                                 "epoch": e, "phase": phase, "iteration": 10 * (e + 1),
                                 "n_active": 300, "batch_size": 30, "loss": loss})
    p = {"batch_size": 30, "settings": [{"name": "a", "layout": "separable"},
                                        {"name": "c", "layout": "overlapping"}]}
    s = toy_summary(pd.DataFrame(rows), p)
    assert s["spl_inv_faster_than_spl"]["wins"] == 2 and s["spl_inv_faster_than_spl"]["value"] == 1.0
    assert s["spl_faster_than_baseline"]["losses"] == 2
    assert s["lgl_faster_than_baseline"]["wins"] == 4            # all settings


def test_faster_verdicts_are_sign_tests_with_exact_intervals():
    """Old behaviour caught: L5 was the bare share of wins (6 of 10 pairs = 0.6 > 0.5 'holds',
    ties counted 0.5). Now a sign test: 6 of 10 has a Clopper-Pearson interval [0.26, 0.88]
    straddling 0.5 (inconclusive), 10 of 10 is decided ([0.69, 1]); ties are dropped, not halved."""
    six = sign_test([1.0] * 6 + [0.0] * 4)
    assert six["value"] == 0.6 and six["lo"] < 0.5 < six["hi"]
    assert stats.above(six["lo"], six["hi"], 0.5) == stats.INCONCLUSIVE
    ten = sign_test([1.0] * 10 + [0.5] * 3)
    assert ten["n"] == 10 and ten["ties"] == 3 and ten["lo"] > 0.5
    assert stats.above(ten["lo"], ten["hi"], 0.5) == stats.HOLDS
    assert ten["p_value"] == pytest.approx(0.5 ** 10)
    assert sign_test([])["value"] is None


def test_normalised_rank_has_chance_level_one_half_for_any_number_of_classes():
    """Old behaviour caught: 'in the lower half' has chance 3/5 with 5 untrained classes (ranks 0,
    1, 2 of 0..4 count), so L6's 0.5 threshold was biased; the normalised rank averages exactly
    0.5 over the classes for every n."""
    for n in (2, 3, 5, 6, 9):
        h = {c: float((7 * c) % n) + 0.01 * c for c in range(n)}
        assert np.mean([normalised_rank(h, c) for c in h]) == pytest.approx(0.5)
    h = {2: 0.1, 3: 0.9, 5: 0.4, 7: 0.6}
    assert normalised_rank(h, 2) == 0.0 and normalised_rank(h, 3) == 1.0
    assert normalised_rank(h, 5) == pytest.approx(1 / 3)


def write_lgl_run(root, method, seed, groups, selections):
    run = root / "lgl" / f"{method}-seed{seed}"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"status": "ok", "method_summary": {
        "order": list(range(6)), "groups": groups, "selections": selections}}))
    return {"run_dir": str(run), "cell": method, "dataset": "toy6", "model": "mlp", "noise": 0.0,
            "method": method, "seed": seed}


def test_entropy_probes_shared_by_strategies_count_once(tmp_path):
    """Old behaviour caught: the first selection of lgl_r3 / d3 / s3 at one seed (the same
    network: same initial classes, same seed) was counted three times. Here it is one probe, and
    the distinct second-step networks add their own."""
    ent1 = {"2": 0.1, "3": 0.5, "4": 0.7, "5": 0.9}              # class 2 (look-alike of 0) lowest
    first = {"step": 1, "trained": [0, 1], "chosen": [2, 3], "entropy": ent1}
    runs = []
    for method, second in (("lgl_r3", [2, 3]), ("lgl_d3", [4, 5]), ("lgl_s3", [2, 3])):
        trained2 = sorted([0, 1] + second)
        rest = [c for c in range(6) if c not in trained2]
        sel2 = {"step": 2, "trained": trained2, "chosen": rest,
                "entropy": {str(c): 0.2 * c for c in rest}}
        runs.append(write_lgl_run(tmp_path, method, 0, [[0, 1], second, rest], [first, sel2]))
    (tmp_path / "lgl" / "index.json").write_text(json.dumps({"study": "lgl", "runs": runs}))
    out = entropy_analysis(tmp_path, tmp_path / "none", {"toy6": [["0", "2"], ["1", "5"]]})
    step1 = [p for p in out["probes"] if p["step"] == 1]
    assert len(step1) == 2                                         # (0 ~ 2) and (1 ~ 5), once each
    assert sorted(p["rank"] for p in step1) == [0.0, 1.0]
    step2 = [p for p in out["probes"] if p["step"] == 2]
    # r3 and s3 trained the same groups (one network), d3 others: 2 distinct second selections
    assert len({p["selection"] for p in step2}) == 2
    r = out["similar_class_rank"]
    assert r["n_selections"] == 3 and r["lo"] <= r["value"] <= r["hi"]


@pytest.mark.parametrize("centres,pattern", [({"separable": [[1.0, 2.0]]}, r"lgl_toy\.centres\.separable"),
                                             ({"separable": [[1.0, 2.0, 3.0], [0, 0]]}, r"lgl_toy\.centres\.separable"),
                                             ({"round": [[0, 0], [1, 1]]}, r"lgl_toy\.centres"),
                                             ([[0, 0]], r"lgl_toy\.centres: expected dict")])
def test_bad_toy_centres_are_refused_naming_the_key(centres, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate_toy({"centres": centres}, {})
