"""The statistics behind every verdict and every "reproduced" mark of the reports.

One module decides them all, so that a reader can check one page:

* Intervals are t-based: `mean_ci` (a cell's mean over seeds), `diff_interval` (Welch's
  interval of a difference of two cells' means), `paired_interval` (a paired t-interval when both
  cells ran the same seeds and a seed fixes the same noise draw, split and initialisation).
  With fewer than 2 values an interval is infinite, so nothing is decided on one seed.
* A claim's comparison is a verdict on its interval: `above` / `below` (is the difference beyond
  a threshold?), `within` (equivalence: is |difference| <= tol?). `holds` and `does not hold`
  need the whole interval on one side; otherwise `inconclusive`.
* Counts (how many probes rank a look-alike class first, ...) use exact binomial statistics:
  `proportion` (Clopper-Pearson interval) and `binom_test`; statistics with no closed-form
  interval use `bootstrap_ci` (percentile bootstrap, seeded).
* "Reproduced" (our number vs the paper's) is an equivalence test (TOST at level alpha, i.e. the
  1 - 2 alpha t-interval inside [paper - tol, paper + tol]): `reproduced`. An interval wider than
  the band (2 tol) cannot show equivalence with these seeds: `underpowered`, not a failure.
* A claim over many cells combines their verdicts with an explicit rule (`combine`): "all" (the
  default: holds iff every cell holds, does not hold if any cell does not hold), "any",
  "majority" (holds iff more than half hold, does not hold iff more than half do not).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from scipy import stats as sps

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
NOT_RUN, NOT_COMPARABLE, NOT_TESTABLE = "not run", "not comparable", "not testable at this scale"
REPRODUCED, NOT_REPRODUCED, UNDERPOWERED = "reproduced", "not reproduced", "underpowered"
COMBINE_RULES = ("all", "any", "majority")


def _finite(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([float(x) for x in values if x is not None and np.isfinite(float(x))], dtype=float)


def t_half_width(sd: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided t-interval of a mean of n values with sample sd `sd`."""
    if n < 2:
        return float("inf")
    return float(sps.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n))


def mean_ci(values: Iterable[float | None], level: float = 0.95,
            bounds: tuple[float, float] | None = None) -> tuple[float, float, float, float]:
    """(mean, sd, lo, hi) of the finite values: t-interval, clipped to `bounds` when given
    (accuracies: [0, 1]). n = 0 gives NaNs; n = 1 gives the mean and NaN sd / bounds."""
    v = _finite(values)
    if len(v) == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    m = float(v.mean())
    if len(v) == 1:
        return (m, np.nan, np.nan, np.nan)
    sd = float(v.std(ddof=1))
    half = t_half_width(sd, len(v), level)
    lo, hi = m - half, m + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return (m, sd, lo, hi)


def diff_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) - mean(b), lo, hi): Welch's t-interval; infinite with < 2 values on a side."""
    a, b = _finite(a), _finite(b)
    if len(a) == 0 or len(b) == 0:
        return (np.nan, -np.inf, np.inf)
    sd = lambda v: float(v.std(ddof=1)) if len(v) > 1 else np.nan  # noqa: E731
    return diff_interval_summary(float(a.mean()), sd(a), len(a), float(b.mean()), sd(b), len(b), level)


def diff_interval_summary(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int,
                          level: float = 0.95) -> tuple[float, float, float]:
    """`diff_interval` from two cells' summaries (mean, sample sd, n) instead of their values."""
    d = float(mean_a - mean_b)
    if n_a < 2 or n_b < 2 or np.isnan(sd_a) or np.isnan(sd_b):
        return d, -np.inf, np.inf
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    se = float(np.sqrt(va + vb))
    if se == 0:
        return d, d, d
    dof = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    half = float(sps.t.ppf(0.5 + level / 2, dof) * se)
    return d, d - half, d + half


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a - b), lo, hi): paired t-interval over matched entries (the same seeds)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_interval needs matched values, got {a.shape} and {b.shape}")
    m, sd, lo, hi = mean_ci(a - b, level)
    if np.isnan(sd):
        return m, -np.inf, np.inf
    return m, lo, hi


def above(lo: float, hi: float, thr: float = 0.0) -> str:
    """Is the quantity above `thr`? holds if the whole interval is, does not hold if the whole
    interval is below it, else inconclusive."""
    if lo > thr:
        return HOLDS
    if hi < thr:
        return FAILS
    return INCONCLUSIVE


def below(lo: float, hi: float, thr: float = 0.0) -> str:
    """Is the quantity below `thr`? (the mirror of `above`)."""
    if hi < thr:
        return HOLDS
    if lo > thr:
        return FAILS
    return INCONCLUSIVE


def at_most(lo: float, hi: float, thr: float = 0.0) -> str:
    """Is the quantity <= `thr`? holds if the whole interval is, fails if the whole interval
    exceeds it."""
    if hi <= thr:
        return HOLDS
    if lo > thr:
        return FAILS
    return INCONCLUSIVE


def within(lo: float, hi: float, tol: float) -> str:
    """Equivalence: is |quantity| <= tol? holds if the interval lies inside [-tol, tol], does
    not hold if it lies wholly outside, else inconclusive."""
    if -tol <= lo and hi <= tol:
        return HOLDS
    if lo > tol or hi < -tol:
        return FAILS
    return INCONCLUSIVE


SAME, OPPOSITE = "same direction", "opposite direction"


def direction(lo: float, hi: float, paper_diff: float) -> str:
    """Does our difference (its interval [lo, hi]) go the way the paper's difference does?
    `same direction` / `opposite direction` need the whole interval on one side of 0;
    otherwise `inconclusive`; a paper difference of 0 gives "paper: tie"."""
    if np.isnan(paper_diff):
        return "n/a"
    if paper_diff == 0:
        return "paper: tie"
    side = above(lo, hi, 0.0)
    if side == INCONCLUSIVE:
        return INCONCLUSIVE
    return SAME if (side == HOLDS) == (paper_diff > 0) else OPPOSITE


def proportion(k: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """(k/n, lo, hi): the exact Clopper-Pearson interval of a binomial proportion."""
    if n <= 0:
        return (np.nan, 0.0, 1.0)
    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return (k / n, float(ci.low), float(ci.high))


def binom_test(k: int, n: int, p0: float, alternative: str = "greater") -> float:
    """Exact binomial test p-value of k successes in n trials against chance level p0."""
    if n <= 0:
        return 1.0
    return float(sps.binomtest(int(k), int(n), float(p0), alternative=alternative).pvalue)


def bootstrap_ci(values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean,
                 level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(statistic(values), lo, hi): percentile bootstrap over the values, seeded."""
    v = _finite(values)
    if len(v) < 2:
        return (float(statistic(v)) if len(v) else np.nan, -np.inf, np.inf)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    boots = np.array([statistic(v[i]) for i in idx], dtype=float)
    q = (1 - level) / 2
    return (float(statistic(v)), float(np.quantile(boots, q)), float(np.quantile(boots, 1 - q)))


def reproduced(values: Sequence[float], paper_value: float, tol: float,
               alpha: float = 0.05) -> tuple[str, float, float]:
    """Equivalence of our mean to the paper's number at tolerance `tol` (TOST at level alpha).

    Returns (verdict, lo, hi) with the 1 - 2 alpha t-interval of our mean: `reproduced` if it lies
    inside [paper - tol, paper + tol]; `underpowered` if it is wider than that band (these seeds
    cannot show equivalence at this tolerance) or has < 2 values; `not reproduced` otherwise."""
    v = _finite(values)
    return reproduced_summary(float(v.mean()) if len(v) else np.nan,
                              float(v.std(ddof=1)) if len(v) > 1 else np.nan, len(v),
                              paper_value, tol, alpha)


def reproduced_summary(mean: float, sd: float, n: int, paper_value: float, tol: float,
                       alpha: float = 0.05) -> tuple[str, float, float]:
    """`reproduced` from a cell's summary (mean, sample sd, n seeds) instead of its values."""
    if n == 0 or np.isnan(mean):
        return NOT_RUN, np.nan, np.nan
    if n < 2 or np.isnan(sd):
        return UNDERPOWERED, -np.inf, np.inf
    half = t_half_width(sd, n, 1 - 2 * alpha)
    lo, hi = mean - half, mean + half
    if paper_value - tol <= lo and hi <= paper_value + tol:
        return REPRODUCED, lo, hi
    if hi - lo > 2 * tol:
        return UNDERPOWERED, lo, hi
    return NOT_REPRODUCED, lo, hi


def combine(verdicts: Sequence[str], rule: str = "all") -> str:
    """One verdict from many cells' verdicts. Cells that were not run / not comparable / not
    testable count as inconclusive unless every cell is of that one kind (then that kind)."""
    if rule not in COMBINE_RULES:
        raise ValueError(f"unknown combine rule {rule!r}; choose from {', '.join(COMBINE_RULES)}")
    vs = list(verdicts)
    if not vs:
        return NOT_RUN
    for kind in (NOT_RUN, NOT_COMPARABLE, NOT_TESTABLE):
        if all(v == kind for v in vs):
            return kind
    vs = [v if v in (HOLDS, FAILS) else INCONCLUSIVE for v in vs]
    n_hold, n_fail = vs.count(HOLDS), vs.count(FAILS)
    if rule == "all":
        return FAILS if n_fail else HOLDS if n_hold == len(vs) else INCONCLUSIVE
    if rule == "any":
        return HOLDS if n_hold else FAILS if n_fail == len(vs) else INCONCLUSIVE
    return HOLDS if n_hold > len(vs) / 2 else FAILS if n_fail > len(vs) / 2 else INCONCLUSIVE
