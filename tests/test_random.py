"""The count engine's counter-based samplers against their true distributions.

Each check draws many values from the compiled samplers with a fixed key and compares
the sample with the exact distribution: the mean and the variance within a few
standard errors (the variance's from the sample's fourth moment), and a χ² goodness
of fit of the whole distribution at small n. Inversion and rejection (BTRS, PTRS)
are both exercised, and so are n = 1e9 and 1e12.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from funnelsim.engines._kernels import _fc, binomial_many, poisson_many

Z_MAX = 4.5
DRAWS = 100_000
KEY = np.array([20260101, 8], dtype=np.uint64)


def moments_z(x: np.ndarray, mean: float, var: float) -> tuple[float, float]:
    """z-scores of the sample mean and sample variance against the true values."""
    x = x.astype(float)
    n = len(x)
    z_mean = (x.mean() - mean) / math.sqrt(var / n)
    m4 = np.mean((x - x.mean()) ** 4)
    s2 = x.var(ddof=1)
    z_var = (s2 - var) / math.sqrt(max(m4 - s2 * s2, 1e-300) / n)
    return z_mean, z_var


def chi2_pvalue(x: np.ndarray, pmf: np.ndarray) -> float:
    """χ² goodness of fit, cells with expected count < 5 pooled into one."""
    observed = np.bincount(x, minlength=len(pmf))[: len(pmf)]
    expected = pmf * len(x)
    keep = expected >= 5
    obs = np.append(observed[keep], len(x) - observed[keep].sum())
    exp = np.append(expected[keep], len(x) - expected[keep].sum())
    return float(stats.chisquare(obs, exp).pvalue)


def test_stirling_tail_matches_lgamma():
    for k in range(200):
        exact = math.lgamma(k + 1) - (
            (k + 0.5) * math.log(k + 1) - (k + 1) + 0.5 * math.log(2 * math.pi)
        )
        assert abs(_fc(float(k)) - exact) < 1e-10, k


@pytest.mark.parametrize(
    ("n", "p"),
    [(5, 0.3), (60, 0.1), (1000, 0.005), (100, 0.4), (1000, 0.5), (400, 0.93), (10**6, 0.2)],
    ids=["inv-tiny", "inv", "inv-rare", "btrs", "btrs-half", "btrs-flipped", "btrs-1e6"],
)
def test_binomial_mean_and_variance(n, p):
    x = binomial_many(np.full(DRAWS, n, np.int64), np.full(DRAWS, p), KEY)
    assert x.min() >= 0 and x.max() <= n
    z_mean, z_var = moments_z(x, n * p, n * p * (1 - p))
    assert abs(z_mean) < Z_MAX and abs(z_var) < Z_MAX, (z_mean, z_var)


@pytest.mark.parametrize("n", [10**9, 10**12], ids=["1e9", "1e12"])
@pytest.mark.parametrize("p", [0.3, 0.999, 2e-12, 1e-6], ids=["p0.3", "p0.999", "np~1", "np~1e3+"])
def test_binomial_at_huge_n(n, p):
    """Exact at a billion and a trillion: mean and variance within standard errors."""
    x = binomial_many(np.full(DRAWS, n, np.int64), np.full(DRAWS, p), KEY)
    z_mean, z_var = moments_z(x, n * p, n * p * (1 - p))
    assert abs(z_mean) < Z_MAX and abs(z_var) < Z_MAX, (z_mean, z_var)


@pytest.mark.parametrize(("n", "p"), [(20, 0.3), (80, 0.35)], ids=["inversion", "btrs"])
def test_binomial_distribution_chi2(n, p):
    x = binomial_many(np.full(DRAWS, n, np.int64), np.full(DRAWS, p), KEY)
    assert chi2_pvalue(x, stats.binom.pmf(np.arange(n + 1), n, p)) > 1e-3


@pytest.mark.parametrize("lam", [0.05, 3.0, 9.5, 10.0, 250.0, 1e9, 1e12])
def test_poisson_mean_and_variance(lam):
    x = poisson_many(np.full(DRAWS, lam), KEY)
    z_mean, z_var = moments_z(x, lam, lam)
    assert abs(z_mean) < Z_MAX and abs(z_var) < Z_MAX, (z_mean, z_var)


@pytest.mark.parametrize("lam", [3.0, 40.0], ids=["inversion", "ptrs"])
def test_poisson_distribution_chi2(lam):
    x = poisson_many(np.full(DRAWS, lam), KEY)
    top = int(lam + 12 * math.sqrt(lam) + 20)
    assert chi2_pvalue(x, stats.poisson.pmf(np.arange(top), lam)) > 1e-3


def test_draws_belong_to_their_key_and_sub_stream():
    n, p = np.full(1000, 50, np.int64), np.full(1000, 0.3)
    a = binomial_many(n, p, KEY)
    assert np.array_equal(a, binomial_many(n, p, KEY))  # same key, same numbers
    assert np.array_equal(a[:10], binomial_many(n[:10], p[:10], KEY))  # no shared position
    other = binomial_many(n, p, np.array([20260101, 9], dtype=np.uint64))
    assert (a != other).mean() > 0.8  # another key, other numbers
    assert abs(np.corrcoef(a, other)[0, 1]) < Z_MAX / math.sqrt(1000)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < Z_MAX / math.sqrt(1000)


def test_inversion_is_monotone_in_p():
    """The same sub-stream gives at least as many at a higher p: variants pair well."""
    n = np.full(DRAWS, 40, np.int64)
    low = binomial_many(n, np.full(DRAWS, 0.1), KEY)
    high = binomial_many(n, np.full(DRAWS, 0.13), KEY)
    assert np.all(high >= low)
    diff = (high - low).astype(float)
    assert abs(diff.mean() - 40 * 0.03) < Z_MAX * diff.std() / math.sqrt(DRAWS)
