"""The study's pure functions: the convergence-iteration rule on synthetic loss curves,
iterations to a target, the speed-up ratio, and the trajectory PCA."""
import numpy as np
import pytest

from trainrepro.papers.llbsgd.analysis import (convergence_iteration, iterations_to_target,
                                               plane_grid, rel_range, smooth, speedup,
                                               trajectory_pca)


def test_smooth_is_a_trailing_mean():
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth([1, 2, 3], 1), [1, 2, 3])


def test_convergence_rule_on_a_synthetic_exponential_curve():
    # L(t) = 2 exp(-t / 500) + 0.1: decrease over the last 1000 iterations is
    # 2 exp(-(t-1000)/500) (1 - exp(-2)) <= 0.1 first at t - 1000 = 500 ln(2 (1 - e^-2) / 0.1)
    t = np.arange(10_000)
    losses = 2 * np.exp(-t / 500) + 0.1
    got = convergence_iteration(losses, window=1000, min_decrease=0.1)
    expect_t = 1000 + 500 * np.log(2 * (1 - np.exp(-2)) / 0.1)
    assert abs((got - 1) - expect_t) <= 1
    assert convergence_iteration(losses[:1500], window=1000, min_decrease=0.1) is None


def test_convergence_rule_ignores_noise_when_smoothed():
    rng = np.random.default_rng(0)
    t = np.arange(4000)
    clean = np.maximum(3.0 - t / 1000, 0.5)   # linear fall to 0.5 at t = 2500, then flat
    noisy = clean + rng.normal(0, 0.3, len(t))
    got = convergence_iteration(noisy, window=500, min_decrease=0.1, smooth_width=200)
    # the clean curve: decrease over 500 iterations <= 0.1 once t - 500 >= 2400, i.e. t >= 2900
    assert 2700 <= got <= 3100
    assert abs(convergence_iteration(clean, window=500, min_decrease=0.1) - 2901) <= 1  # float ties


def test_iterations_to_target_and_speedup_ratio():
    assert iterations_to_target([3, 2, 1, 0.5], 1.0) == 3
    assert iterations_to_target([3, 2], 1.0) is None
    s = speedup([400, 600, 500], [100, 150, 125], budget=1000)
    assert s["ratio"] == pytest.approx(4.0) and s["ci_low"] == pytest.approx(4.0)
    s = speedup([None, 600], [100, 200], budget=1000)
    assert s["per_seed"] == [10.0, 3.0] and s["censored"] == 1
    assert rel_range([1.0, 1.5, 0.5]) == pytest.approx(1.0)


def test_trajectory_pca_recovers_a_planar_trajectory():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(50, 2)))[0].T    # 2 orthonormal directions in R^50
    offset = rng.normal(size=50)
    a = np.stack([np.linspace(0, 4, 30), np.linspace(0, 1, 30) ** 2], 1)
    b = np.stack([np.linspace(0, -2, 20), np.linspace(0, 2, 20)], 1)
    trajs = [offset + a @ basis, offset + b @ basis]
    out = trajectory_pca(trajs)
    assert out["explained"].sum() == pytest.approx(1.0)
    # the recovered plane is the true plane: projections reconstruct the iterates exactly
    for t, c in zip(trajs, out["coords"]):
        np.testing.assert_allclose(out["centre"] + c @ out["directions"], t, atol=1e-10)
    np.testing.assert_allclose(out["directions"] @ out["directions"].T, np.eye(2), atol=1e-12)
    ga, gb = plane_grid(out["coords"], n=11)
    assert len(ga) == 11 and ga.min() < min(c[:, 0].min() for c in out["coords"])


def test_layer_scale_is_the_final_layer_rate_over_the_initial_lr_averaged_over_seeds():
    from trainrepro.papers.llbsgd.analysis import layer_scale

    runs = [{"status": "ok", "lr": 0.1, "final": {"lr[conv]": 0.05, "lr[fc]": 0.1, "lr_mean": 0.075}},
            {"status": "ok", "lr": 0.1, "final": {"lr[conv]": 0.07, "lr[fc]": 0.09, "lr_mean": 0.08}},
            {"status": "diverged", "lr": 0.1, "final": {"lr[conv]": 0.0, "lr[fc]": 0.0}}]
    assert layer_scale(runs) == pytest.approx({"conv": 0.6, "fc": 0.95})
    assert layer_scale([]) == {}
