"""Gamma frailty in a repeat stage: the likelihood against independent forms, and
P(alive) and expected repeats against customers simulated by the Pareto/NBD process."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from funnelsim.inference.frailty import expected_repeats, p_alive, repeat_loglik


def pareto_nbd_hyp2f1(x, t_x, T, r, alpha, s, beta):
    """The Pareto/NBD log-likelihood in Fader & Hardie's hypergeometric form (note 028)."""
    rx, rsx = r + x, r + s + x
    c = special.gammaln(rx) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    if alpha >= beta:
        m, z1, z2, b1, b2 = (
            alpha,
            (alpha - beta) / (alpha + t_x),
            (alpha - beta) / (alpha + T),
            s + 1,
            s,
        )
    else:
        m, z1, z2, b1, b2 = (
            beta,
            (beta - alpha) / (beta + t_x),
            (beta - alpha) / (beta + T),
            rx,
            rx + 1,
        )
    a1 = np.log(special.hyp2f1(rsx, b1, rsx + 1, z1)) - rsx * np.log(m + t_x)
    a2 = np.log(special.hyp2f1(rsx, b2, rsx + 1, z2)) - rsx * np.log(m + T)
    return c + np.logaddexp(np.log(s / rsx) + a1, np.log(rx / rsx) + a2)


def brute_force(x, t_x, T, r, alpha, s, beta, nu=0.0, exited=False, n=2000):
    """Integrate one customer's likelihood given (λ, μ) over both gamma laws on a grid
    in (ln λ, ln μ); also returns P(alive at T) and E[λ·alive] from the same grid."""
    lam = np.exp(np.linspace(np.log(1e-40), np.log(1e3), n))
    mu = lam
    L, M = np.meshgrid(lam, mu, indexing="ij")
    w = (  # log densities times the Jacobian λ·μ of the grid in (ln λ, ln μ)
        r * np.log(alpha)
        - special.gammaln(r)
        + r * np.log(L)
        - alpha * L
        + s * np.log(beta)
        - special.gammaln(s)
        + s * np.log(M)
        - beta * M
    )
    k = L + M + nu
    still = x * np.log(L) - k * T
    if exited:
        like = np.exp(still + np.log(nu))
        alive = np.zeros_like(like)
    else:
        gone = x * np.log(L) + np.log(M / k) - k * t_x + np.log(-np.expm1(-k * (T - t_x)))
        like = np.exp(still) + np.exp(gone)
        alive = np.exp(still)
    dx = np.log(lam[1] / lam[0]) * np.log(mu[1] / mu[0])
    weight = np.exp(w) * dx
    total = (weight * like).sum()
    return np.log(total), (weight * alive).sum() / total, (weight * alive * L).sum() / total


def simulate(n, *, r, alpha, s, beta, nu=0.0, horizon=60.0, rng):
    """Customers of the Pareto/NBD process (plus an observed exit at rate ν), followed
    for 30–365 days since entering the stage; what happens in the next ``horizon`` days."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    follow = rng.uniform(30.0, 365.0, n)
    drop = rng.exponential(1.0, n) / mu
    leave = rng.exponential(1.0, n) / nu if nu > 0 else np.full(n, np.inf)
    exited = leave < np.minimum(drop, follow)
    T = np.where(exited, leave, follow)
    active_end = np.minimum(np.minimum(drop, leave), T)
    x = rng.poisson(lam * active_end)
    t_x = np.where(x > 0, active_end * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    alive = (drop > T) & (leave > T)
    until = np.clip(np.minimum(np.minimum(drop, leave), T + horizon) - T, 0.0, None)
    future = np.where(exited, 0, rng.poisson(lam * until))
    return x, t_x, T, exited, alive, future


POINTS = [  # (x, t_x, T, r, alpha, s, beta): both branches of the hypergeometric form
    (0, 0.0, 10.0, 0.5, 2.0, 0.8, 5.0),
    (3, 6.0, 12.0, 1.2, 4.0, 0.6, 1.5),
    (7, 20.0, 39.0, 0.24, 4.4, 0.61, 11.7),
    (2, 1.0, 30.0, 2.0, 10.0, 0.5, 0.2),
    (40, 200.0, 300.0, 0.8, 3.0, 1.5, 30.0),
    (1, 299.0, 300.0, 0.3, 0.5, 2.0, 0.5),
]


@pytest.mark.parametrize("point", POINTS)
def test_the_likelihood_is_the_pareto_nbd_hypergeometric_form(point):
    assert repeat_loglik(*point) == pytest.approx(pareto_nbd_hyp2f1(*point), rel=1e-10)


@pytest.mark.parametrize(
    "point, nu, exited",
    [
        ((3, 6.0, 12.0, 1.2, 4.0, 0.6, 1.5), 0.05, False),
        ((3, 6.0, 12.0, 1.2, 4.0, 0.6, 1.5), 0.05, True),
        ((7, 20.0, 39.0, 0.24, 4.4, 0.61, 11.7), 0.02, False),
        ((0, 0.0, 25.0, 2.0, 10.0, 0.5, 0.2), 0.1, False),
        ((2, 1.0, 30.0, 2.0, 10.0, 0.5, 0.2), 0.0, False),
    ],
)
def test_the_likelihood_and_p_alive_integrate_the_customers_rates_out(point, nu, exited):
    """Against a brute-force integral of the likelihood given (λ, μ) over their laws:
    independent of every closed form."""
    ll, alive, _ = brute_force(*point, nu=nu, exited=exited)
    assert repeat_loglik(*point, nu=nu, exited=exited) == pytest.approx(ll, abs=1e-6)
    if not exited:
        assert p_alive(*point, nu=nu) == pytest.approx(alive, abs=1e-6)


def test_expected_repeats_match_the_posterior_of_the_rates():
    x, t_x, T, r, alpha, s, beta = 3, 6.0, 12.0, 1.2, 4.0, 0.6, 1.5
    # with ν = 0: Fader & Hardie's closed form (note 009, eq. 41)
    h = 30.0
    closed = (
        p_alive(x, t_x, T, r, alpha, s, beta)
        * (r + x)
        * (beta + T)
        / ((alpha + T) * (s - 1))
        * (1 - ((beta + T) / (beta + T + h)) ** (s - 1))
    )
    assert expected_repeats(h, x, t_x, T, r, alpha, s, beta) == pytest.approx(closed, rel=1e-10)
    # a short horizon: the rate of repeats now is E[λ · alive]
    _, _, lam_alive = brute_force(x, t_x, T, r, alpha, s, beta, nu=0.05)
    short = expected_repeats(1e-4, x, t_x, T, r, alpha, s, beta, nu=0.05) / 1e-4
    assert short == pytest.approx(lam_alive, rel=1e-3)


@pytest.mark.parametrize("nu", [0.0, 0.004])
def test_p_alive_is_calibrated_and_expected_repeats_add_up(nu):
    rng = np.random.default_rng(11)
    params = dict(r=0.6, alpha=12.0, s=0.8, beta=40.0)
    x, t_x, T, exited, alive, future = simulate(40_000, nu=nu, rng=rng, **params)
    silent = ~exited
    p = p_alive(x[silent], t_x[silent], T[silent], nu=nu, **params)
    truth = alive[silent]
    # reliability table: in each decile of P(alive), the share really alive
    edges = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 9)
    for b in range(10):
        inside = bins == b
        expected = p[inside].mean()
        se = np.sqrt(np.sum(p[inside] * (1 - p[inside]))) / inside.sum()
        assert abs(truth[inside].mean() - expected) < 4 * se + 1e-3, (b, expected)
    # the next 60 days' repeats: per customer expectation, summed
    e = expected_repeats(60.0, x[silent], t_x[silent], T[silent], nu=nu, **params)
    gap = future[silent] - e
    assert abs(gap.sum()) < 4 * gap.std() * np.sqrt(silent.sum())
    assert e.sum() == pytest.approx(future[silent].sum(), rel=0.05)


def test_maximum_likelihood_recovers_the_population():
    rng = np.random.default_rng(5)
    truth = np.array([0.6, 12.0, 0.8, 40.0])  # r, alpha, s, beta
    x, t_x, T, _, _, _ = simulate(8_000, r=0.6, alpha=12.0, s=0.8, beta=40.0, rng=rng)

    def nll(theta):
        r, alpha, s, beta = np.exp(theta)
        return -repeat_loglik(x, t_x, T, r, alpha, s, beta).sum()

    fit = optimize.minimize(nll, np.zeros(4), method="BFGS")  # stops near the optimum,
    # often with "precision loss" from finite-difference gradients: the z-scores judge it
    # standard errors of the log parameters from a finite-difference Hessian
    eps, k = 1e-3, len(fit.x)
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            di, dj = np.eye(k)[i] * eps, np.eye(k)[j] * eps
            hess[i, j] = (
                nll(fit.x + di + dj)
                - nll(fit.x + di - dj)
                - nll(fit.x - di + dj)
                + nll(fit.x - di - dj)
            ) / (4 * eps**2)
    se = np.sqrt(np.diag(np.linalg.inv(hess)))
    z = (fit.x - np.log(truth)) / se
    assert np.all(np.abs(z) < 4), (np.exp(fit.x), z)
    assert np.all(se < 0.5)  # 8,000 customers pin every parameter


def test_pytensor_gives_the_same_values_and_exact_gradients():
    import pytensor
    import pytensor.tensor as pt

    x = np.array([0, 3, 7, 40, 2])
    t_x = np.array([0.0, 6.0, 20.0, 200.0, 30.0])
    T = np.array([10.0, 12.0, 39.0, 300.0, 30.0])
    exited = np.array([0, 1, 0, 0, 0])
    theta = pt.dvector("theta")
    r, alpha, s, beta, nu = (pt.exp(theta[i]) for i in range(5))
    total = repeat_loglik(x, t_x, T, r, alpha, s, beta, nu=nu, exited=exited).sum()
    f = pytensor.function([theta], [total, pt.grad(total, theta)], mode="FAST_COMPILE")
    point = np.log([0.8, 3.0, 1.5, 30.0, 0.02])
    value, grad = f(point)

    def numpy_total(p):
        q = np.exp(p)
        return repeat_loglik(x, t_x, T, *q[:4], nu=q[4], exited=exited).sum()

    assert value == pytest.approx(numpy_total(point), rel=1e-12)
    h = 1e-6
    fd = [(numpy_total(point + h * e) - numpy_total(point - h * e)) / (2 * h) for e in np.eye(5)]
    assert grad == pytest.approx(fd, rel=1e-6, abs=1e-7)
    # the last repeat at the end of follow-up (no silent time): finite gradients
    g_end = pytensor.function(
        [theta],
        pt.grad(
            repeat_loglik(
                np.array([2]), np.array([30.0]), np.array([30.0]), r, alpha, s, beta
            ).sum(),
            theta,
        ),
        mode="FAST_COMPILE",
    )(point)
    assert np.all(np.isfinite(g_end))
