"""Customers who differ: gamma frailty on a stage's repeat rate and its silent drop-off.

In a stage with a repeat event (a repeat purchase keeps the customer in place) customer
*i* repeats at their own rate ``λ_i ~ Gamma(r, α)`` and drops out unseen at their own
rate ``μ_i ~ Gamma(s, β)`` (shape, rate): the Pareto/NBD model of the buy-till-you-die
literature (Schmittlein, Morrison & Colombo 1987), here as one stage of a journey. A
customer may also leave the stage by an *observed* exit (moving on, say to advocacy)
at a rate ``ν`` shared by everyone, which only a customer still there can take.

One customer's history in the stage is summarised by ``x`` repeats, the time ``t_x`` of
the last one and the time ``T`` they were followed (both from entering the stage), and
whether the follow-up ended by an observed exit. With ``λ`` and ``μ`` integrated out
(``C = ln Γ(r+x) − ln Γ(r) + r ln α + s ln β``):

* exit observed at ``T``: ``ln L = C + ln ν − νT − (r+x) ln(α+T) − s ln(β+T)``;
* silent since ``t_x``: ``L = e^C [e^{−νT} (α+T)^{−(r+x)} (β+T)^{−s}
  + s ∫_{t_x}^{T} e^{−ντ} (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ]``: still there at ``T``,
  or dropped out unseen at some ``τ`` after the last repeat.

With ``ν = 0`` the integral is a Gauss hypergeometric function (the Pareto/NBD
likelihood); with ``ν > 0`` it has no closed form. Both are computed the same way, by
a fixed 32-node Gauss–Legendre rule in ``ln(min(α, β) + τ)``, where the integrand is
smooth over decades of ``τ``, up to where a factor has fallen by ``e^{−40}`` (a
frequent buyer's integrand lives close to ``t_x``). Against adaptive quadrature this
is within 1e-13 relative over a grid of 6,804 histories and parameters (``x`` up to
500, ``α/β`` from 2e-4 to 1e3, ``ν`` up to 1/day; 24 nodes: 1e-10, 16: 2e-6), where
scipy's ``hyp2f1`` form is off by 3e-5 at ``α/β`` = 1,000 and overflows at
``x`` = 500. Only elementwise operations are used, so the same code runs on numpy
arrays and on PyTensor tensors (exact gradients for NUTS, without the slow series
of the hypergeometric function's gradient).

>>> import numpy as np
>>> ll = repeat_loglik(x=np.array([0, 3]), t_x=np.array([0.0, 6.0]), T=np.array([10.0, 12.0]),
...                    r=1.2, alpha=4.0, s=0.6, beta=1.5)
>>> np.round(ll, 6).tolist()
[-0.649647, -8.279218]
>>> np.round(p_alive(x=3, t_x=6.0, T=12.0, r=1.2, alpha=4.0, s=0.6, beta=1.5), 6)
np.float64(0.412093)
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from scipy import special

__all__ = ["expected_repeats", "p_alive", "repeat_loglik"]

#: Gauss–Legendre nodes of the integrals (see the module docstring for the accuracy)
NODES = 32
#: the silent integral is cut where a factor of its integrand has fallen by e^-CUT
CUT = 40.0
#: a silent interval shorter than this (in log time) is empty: the customer's last
#: repeat is at the end of their follow-up
_TINY = 1e-12


def _numpy_ops() -> SimpleNamespace:
    return SimpleNamespace(
        log=np.log,
        exp=np.exp,
        expm1=np.expm1,
        gammaln=special.gammaln,
        logaddexp=np.logaddexp,
        minimum=np.minimum,
        maximum=np.maximum,
        where=np.where,
        logsumexp=lambda a: special.logsumexp(a, axis=-1),
        asarray=lambda a: np.asarray(a, dtype=float),
        expand=lambda a: np.asarray(a, dtype=float)[..., None],
    )


def _pytensor_ops() -> SimpleNamespace:
    import pytensor.tensor as pt

    return SimpleNamespace(
        log=pt.log,
        exp=pt.exp,
        expm1=pt.expm1,
        gammaln=pt.gammaln,
        logaddexp=pt.logaddexp,
        minimum=pt.minimum,
        maximum=pt.maximum,
        where=pt.switch,
        logsumexp=lambda a: pt.logsumexp(a, axis=-1),
        asarray=pt.as_tensor_variable,
        expand=lambda a: pt.as_tensor_variable(a)[..., None],
    )


def _ops(*values: Any) -> SimpleNamespace:
    """numpy, unless any value is a PyTensor variable."""
    try:
        from pytensor.graph.basic import Variable
    except ImportError:  # pragma: no cover - pytensor is a dependency
        return _numpy_ops()
    return _pytensor_ops() if any(isinstance(v, Variable) for v in values) else _numpy_ops()


def _gauss_legendre() -> tuple[np.ndarray, np.ndarray]:
    """``NODES`` nodes on [0, 1] and the logs of their weights."""
    z, w = np.polynomial.legendre.leggauss(NODES)
    return (z + 1.0) / 2.0, np.log(w / 2.0)


def _log_silent_integral(op, t_x, T, r, alpha, s, beta, nu, x):
    """``ln ∫_{t_x}^{T} e^{−ντ} (α+τ)^{−(r+x)} (β+τ)^{−(s+1)} dτ``.

    In ``v = ln(min(α, β) + τ)`` the integrand is smooth over decades of ``τ``; the
    upper limit is cut where any one factor has fallen by ``e^{−CUT}`` from its value
    at ``t_x`` (each factor only falls, so what is cut is below ``e^{−CUT}`` of the
    integrand's largest value): a frequent buyer's integrand lives within about
    ``(α+t_x)/x`` of ``t_x``.
    """
    p, q = r + x, s + 1.0
    c = op.minimum(alpha, beta)
    v0 = op.log(c + t_x)
    log_a0, log_b0 = op.log(alpha + t_x), op.log(beta + t_x)
    hi = op.minimum(
        op.log(T + c),
        op.minimum(
            op.log(op.exp(log_a0 + op.minimum(CUT / p, 600.0)) - alpha + c),
            op.log(op.exp(log_b0 + op.minimum(CUT / q, 600.0)) - beta + c),
        ),
    )
    hi = op.where(nu > 0, op.minimum(hi, op.log(t_x + CUT / op.where(nu > 0, nu, 1.0) + c)), hi)
    width = op.maximum(hi - v0, _TINY)
    u, log_w = _gauss_legendre()
    v = op.expand(v0) + op.expand(width) * u
    tau = op.exp(v) - op.expand(c)
    log_f = (
        v
        - op.expand(p) * op.log(op.expand(alpha) + tau)
        - op.expand(q) * op.log(op.expand(beta) + tau)
        - op.expand(nu) * tau
    )
    # an empty interval (t_x = T) has no silent term
    out = op.log(width) + op.logsumexp(log_f + log_w)
    return op.where(hi - v0 > _TINY, out, -np.inf)


def _terms(x, t_x, T, r, alpha, s, beta, nu, exited=False):
    """The operations for the inputs, ``C``, and the logs of "still there at ``T``" and
    "dropped out unseen after ``t_x``" (both without ``C``)."""
    op = _ops(x, t_x, T, r, alpha, s, beta, nu, exited)
    x, t_x, T = op.asarray(x), op.asarray(t_x), op.asarray(T)
    r, alpha, s, beta, nu = (op.asarray(v) for v in (r, alpha, s, beta, nu))
    c = op.gammaln(r + x) - op.gammaln(r) + r * op.log(alpha) + s * op.log(beta)
    alive = -nu * T - (r + x) * op.log(alpha + T) - s * op.log(beta + T)
    silent = op.log(s) + _log_silent_integral(op, t_x, T, r, alpha, s, beta, nu, x)
    return op, c, alive, silent, nu


def repeat_loglik(x, t_x, T, r, alpha, s, beta, *, nu=0.0, exited=False):
    """Log-likelihood of each customer's history in a stage with gamma frailty.

    ``x`` repeats, the last at ``t_x`` (0 when ``x`` = 0), followed for ``T`` days since
    entering the stage; ``exited`` marks follow-ups that ended by the observed exit
    (rate ``nu``) at ``T``. ``r, alpha``: shape and rate of the repeat rates across
    customers; ``s, beta``: those of the silent drop-off rates. Arrays broadcast; numpy
    in, numpy out, PyTensor in, PyTensor out.
    """
    op, c, alive, silent, nu = _terms(x, t_x, T, r, alpha, s, beta, nu, exited)
    stayed = c + op.logaddexp(alive, silent)
    if exited is False:
        return stayed
    left = c + op.log(op.where(nu > 0, nu, 1.0)) + alive  # ν = 0: no exit is observed
    return op.where(op.asarray(exited) > 0, left, stayed)


def p_alive(x, t_x, T, r, alpha, s, beta, *, nu=0.0):
    """Probability that a customer silent since ``t_x`` is still in the stage at ``T``."""
    op, _, alive, silent, _ = _terms(x, t_x, T, r, alpha, s, beta, nu)
    return op.exp(alive - op.logaddexp(alive, silent))


def expected_repeats(h, x, t_x, T, r, alpha, s, beta, *, nu=0.0):
    """Expected repeats in the next ``h`` days of a customer silent since ``t_x``.

    ``P(alive) · E[λ | alive] · ∫_0^h e^{−νu} ((β+T)/(β+T+u))^s du`` with
    ``E[λ | alive] = (r+x)/(α+T)`` (the posterior given survival is
    ``λ ~ Gamma(r+x, α+T)``, ``μ ~ Gamma(s, β+T)``). numpy only.
    """
    x, t_x, T, h = (np.asarray(v, dtype=float) for v in (x, t_x, T, h))
    r, alpha, s, beta, nu = (np.asarray(v, dtype=float) for v in (r, alpha, s, beta, nu))
    alive = p_alive(x, t_x, T, r, alpha, s, beta, nu=nu)
    u, log_w = _gauss_legendre()
    grid = h[..., None] * u
    bt = (beta + T)[..., None]
    surv = np.exp(log_w - nu[..., None] * grid + s[..., None] * (np.log(bt) - np.log(bt + grid)))
    return alive * (r + x) / (alpha + T) * h * surv.sum(axis=-1)
