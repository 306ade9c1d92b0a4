"""Noise models: transition structure per convention, realised rates, seed independence."""
import numpy as np
import pytest

from trainrepro.data.noise import (
    NOISE_MODELS,
    PairFlip,
    SymmetricExclusive,
    SymmetricInclusive,
    empirical_transition,
    make_noise,
    noise_id,
)
from trainrepro.registry import ConfigError

K, N = 10, 200_000


def binomial_tol(p: float, n: int, z: float = 5.0) -> float:
    return z * np.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def labels():
    return np.random.default_rng(123).integers(0, K, N)


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.8])
def test_symmetric_including_true_class_realised_rate_is_p_times_one_minus_one_over_k(labels, rate):
    noisy = SymmetricInclusive(rate).apply(labels, K, seed=1)
    expected = rate * (1 - 1 / K)
    assert abs((noisy != labels).mean() - expected) < binomial_tol(expected, N)


@pytest.mark.parametrize("cls", [SymmetricExclusive, PairFlip])
@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_exclusive_and_pair_flip_realised_rate_is_p(labels, cls, rate):
    noisy = cls(rate).apply(labels, K, seed=2)
    assert abs((noisy != labels).mean() - rate) < binomial_tol(rate, N)


def test_transition_matrices_follow_their_conventions():
    p = 0.4
    inc = SymmetricInclusive(p).transition_matrix(K)
    exc = SymmetricExclusive(p).transition_matrix(K)
    pair = PairFlip(p).transition_matrix(K)
    for t in (inc, exc, pair):
        np.testing.assert_allclose(t.sum(1), 1.0)
    np.testing.assert_allclose(np.diag(inc), 1 - p + p / K)
    assert np.allclose(inc[~np.eye(K, dtype=bool)], p / K)
    np.testing.assert_allclose(np.diag(exc), 1 - p)
    assert np.allclose(exc[~np.eye(K, dtype=bool)], p / (K - 1))
    np.testing.assert_allclose(np.diag(pair), 1 - p)
    for c in range(K):
        assert pair[c, (c + 1) % K] == pytest.approx(p)
        assert pair[c].sum() - pair[c, c] - pair[c, (c + 1) % K] == pytest.approx(0.0)


def test_empirical_transition_matches_the_model_on_a_large_sample(labels):
    model = SymmetricExclusive(0.3)
    emp = empirical_transition(labels, model.apply(labels, K, seed=5), K)
    assert np.abs(emp - model.transition_matrix(K)).max() < 0.02


def test_pair_flip_only_moves_to_the_next_class(labels):
    noisy = PairFlip(0.5).apply(labels, K, seed=3)
    moved = noisy != labels
    assert np.all(noisy[moved] == (labels[moved] + 1) % K)


def test_noise_is_a_function_of_the_noise_seed_only(labels):
    import torch

    a = SymmetricInclusive(0.4).apply(labels, K, seed=7)
    torch.manual_seed(999)
    np.random.seed(999)  # the training seed's global generators do not matter
    b = SymmetricInclusive(0.4).apply(labels, K, seed=7)
    c = SymmetricInclusive(0.4).apply(labels, K, seed=8)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.1


def test_rate_out_of_range_and_unknown_kind_are_refused():
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        make_noise("symmetric_incl", 1.3)
    with pytest.raises(ConfigError, match="allowed: .*pair_flip"):
        make_noise("uniform", 0.2)
    assert set(NOISE_MODELS) == {"symmetric_incl", "symmetric_excl", "pair_flip"}


def test_noise_ids_name_the_variant_and_collapse_clean():
    assert noise_id("pair_flip", 0.4, 3) == "pair_flip-0.4-s3"
    assert noise_id("pair_flip", 0.0, 3) == noise_id("symmetric_incl", 0.0, 0) == "clean"
