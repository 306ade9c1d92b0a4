"""trainrepro.stats: the one module behind every verdict and "reproduced" mark."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from trainrepro import stats
from trainrepro.report.claims import evaluate_claims, evaluate_rule
from trainrepro.stats import (FAILS, HOLDS, INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, NOT_TESTABLE,
                              REPRODUCED, UNDERPOWERED)


def test_mean_ci_is_t_based_not_z():
    """Old risk: a z interval (1.96 sd/sqrt(n)) is far too narrow at 3 seeds."""
    v = [0.80, 0.82, 0.84]
    m, sd, lo, hi = stats.mean_ci(v)
    half = sps.t.ppf(0.975, 2) * np.std(v, ddof=1) / np.sqrt(3)
    assert m == pytest.approx(0.82) and sd == pytest.approx(0.02)
    assert hi - m == pytest.approx(half) and half > 1.96 * 0.02 / np.sqrt(3) * 2


def test_diff_interval_matches_scipy_welch():
    a, b = np.array([0.9, 0.92, 0.95, 0.91]), np.array([0.85, 0.80, 0.88])
    d, lo, hi = stats.diff_interval(a, b)
    res = sps.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert d == pytest.approx(a.mean() - b.mean())
    assert (lo, hi) == pytest.approx((ci.low, ci.high))


def test_one_seed_decides_nothing():
    d, lo, hi = stats.diff_interval([0.9], [0.1])
    assert stats.above(lo, hi, 0.0) == INCONCLUSIVE
    assert stats.reproduced([0.9], 0.9, 0.01)[0] == UNDERPOWERED


def test_paired_interval_uses_the_pairs():
    a = np.array([0.70, 0.80, 0.90]) + 0.01
    b = np.array([0.70, 0.80, 0.90])
    d, lo, hi = stats.paired_interval(a, b)
    assert stats.above(lo, hi, 0.0) == HOLDS  # a constant +0.01 is certain when paired ...
    assert stats.above(*stats.diff_interval(a, b)[1:], 0.0) == INCONCLUSIVE  # ... not unpaired
    with pytest.raises(ValueError):
        stats.paired_interval([1, 2], [1, 2, 3])


def test_threshold_verdicts():
    assert stats.above(0.1, 0.2, 0.0) == HOLDS and stats.above(-0.2, -0.1, 0.0) == FAILS
    assert stats.above(-0.1, 0.1, 0.0) == INCONCLUSIVE
    assert stats.below(-0.2, -0.1, 0.0) == HOLDS and stats.below(0.1, 0.2, 0.0) == FAILS
    assert stats.within(-0.01, 0.01, 0.02) == HOLDS and stats.within(0.03, 0.05, 0.02) == FAILS
    assert stats.within(0.0, 0.05, 0.02) == INCONCLUSIVE
    assert stats.at_most(-1, 0.0, 0.0) == HOLDS and stats.at_most(0.1, 0.2, 0.0) == FAILS


def test_equivalence_test_for_reproduced():
    """Old rule: |diff| <= tol OR the paper value within the CI +- tol, so a wide interval counted
    as reproduced; the equivalence test needs the interval inside the band."""
    paper = 0.80
    tight = [0.801, 0.799, 0.800, 0.802]
    assert stats.reproduced(tight, paper, 0.02)[0] == REPRODUCED
    off = [0.75, 0.751, 0.749, 0.750]
    assert stats.reproduced(off, paper, 0.02)[0] == NOT_REPRODUCED
    wide = [0.70, 0.90, 0.80]  # mean = paper, but the seeds cannot show equivalence at 0.02
    verdict, lo, hi = stats.reproduced(wide, paper, 0.02)
    assert verdict == UNDERPOWERED and hi - lo > 0.04
    assert stats.reproduced([], paper, 0.02)[0] == NOT_RUN
    m, sd = np.mean(tight), np.std(tight, ddof=1)
    assert stats.reproduced_summary(m, sd, 4, paper, 0.02) == stats.reproduced(tight, paper, 0.02)


def test_proportion_and_binomial_test_are_exact():
    p, lo, hi = stats.proportion(6, 10)
    assert p == 0.6 and lo == pytest.approx(0.26237, abs=1e-4) and hi == pytest.approx(0.87844, abs=1e-4)
    assert stats.binom_test(6, 10, 0.5) == pytest.approx(0.376953125)
    # 6 of 10 above chance 0.5 is not evidence: the interval straddles it
    assert stats.above(lo, hi, 0.5) == INCONCLUSIVE


def test_bootstrap_is_seeded_and_covers():
    v = np.random.default_rng(0).normal(1.0, 0.1, 40)
    e1 = stats.bootstrap_ci(v, seed=3)
    assert e1 == stats.bootstrap_ci(v, seed=3)
    assert e1[1] < 1.0 < e1[2] and e1[1] < e1[0] < e1[2]
    assert stats.bootstrap_ci([1.0])[1] == -np.inf


@pytest.mark.parametrize("verdicts,rule,want", [
    ([HOLDS, HOLDS], "all", HOLDS), ([HOLDS, FAILS], "all", FAILS), ([HOLDS, INCONCLUSIVE], "all", INCONCLUSIVE),
    ([HOLDS, FAILS], "any", HOLDS), ([FAILS, FAILS], "any", FAILS), ([FAILS, INCONCLUSIVE], "any", INCONCLUSIVE),
    ([HOLDS, HOLDS, FAILS], "majority", HOLDS), ([HOLDS, FAILS], "majority", INCONCLUSIVE),
    ([NOT_TESTABLE, NOT_TESTABLE], "all", NOT_TESTABLE), ([NOT_RUN, HOLDS], "all", INCONCLUSIVE),
    ([], "all", NOT_RUN)])
def test_combine_rules(verdicts, rule, want):
    assert stats.combine(verdicts, rule) == want


def test_combine_rejects_unknown_rule():
    with pytest.raises(ValueError, match="combine rule"):
        stats.combine([HOLDS], "most")


def _runs():
    import pandas as pd
    rows = [{"status": "ok", "dataset": "d", "model": "m", "noise": 0.0, "method": meth, "seed": s,
             "test_acc": acc + 0.001 * s}
            for meth, acc in (("a", 0.9), ("b", 0.8)) for s in range(3)]
    return pd.DataFrame(rows)


def test_testable_at_gives_not_testable_at_other_scales(tmp_path):
    rule = {"type": "greater", "a": {"method": "a"}, "b": {"method": "b"}, "testable_at": ["paper"]}
    assert evaluate_rule(rule, _runs(), tmp_path, scale="quick").verdict == NOT_TESTABLE
    assert evaluate_rule(rule, _runs(), tmp_path, scale="paper").verdict == HOLDS
    out = evaluate_claims([{"id": "X", "paper": "p", "statement": "s", "rule": rule}],
                          {"p": _runs()}, tmp_path, scale="quick")
    assert out.iloc[0]["verdict"] == NOT_TESTABLE


def test_scalar_rule_with_an_interval_decides_on_the_interval(tmp_path):
    (tmp_path / "s.json").write_text('{"x": {"value": 0.6, "lo": 0.26, "hi": 0.88}, "y": 0.6}')
    base = {"type": "scalar", "file": "s.json", "op": ">", "value": 0.5}
    assert evaluate_rule({**base, "key": "x"}, _runs(), tmp_path).verdict == INCONCLUSIVE
    v = evaluate_rule({**base, "key": "y"}, _runs(), tmp_path)
    assert v.verdict == HOLDS and "without an interval" in v.evidence


def test_claim_combine_option():
    rules = [{"type": "greater", "a": {"method": "a"}, "b": {"method": "b"}},
             {"type": "greater", "a": {"method": "b"}, "b": {"method": "a"}}]
    claim = {"id": "X", "paper": "p", "statement": "s", "rules": rules}
    assert evaluate_claims([claim], {"p": _runs()}, ".").iloc[0]["verdict"] == FAILS
    assert evaluate_claims([{**claim, "combine": "any"}], {"p": _runs()}, ".").iloc[0]["verdict"] == HOLDS


def test_direction_needs_the_whole_interval_on_one_side():
    assert stats.direction(0.01, 0.05, +0.1) == stats.SAME
    assert stats.direction(0.01, 0.05, -0.1) == stats.OPPOSITE
    assert stats.direction(-0.01, 0.05, +0.1) == INCONCLUSIVE
    assert stats.direction(0.01, 0.05, 0.0) == "paper: tie"


def test_summary_interval_equals_the_values_interval():
    """Old mentornet direction verdict used a z half-width 1.96 * se; the summary interval is
    Welch's t, identical to diff_interval on the values."""
    a, b = np.array([0.80, 0.82, 0.86]), np.array([0.78, 0.79, 0.74])
    want = stats.diff_interval(a, b)
    got = stats.diff_interval_summary(a.mean(), a.std(ddof=1), 3, b.mean(), b.std(ddof=1), 3)
    assert got == pytest.approx(want)
    z_half = 1.96 * np.sqrt(a.var(ddof=1) / 3 + b.var(ddof=1) / 3)
    assert (want[2] - want[0]) > z_half * 1.3
