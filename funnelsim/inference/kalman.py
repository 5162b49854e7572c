"""Random flows: the covariance of a funnel's counts, and the Kalman filter over them.

People move independently. In each step a person in stage ``i`` makes one of the moves of
:func:`~funnelsim.inference.flows.step_matrices` — to stage ``j``, a repeat, to lost, or
nothing — and arrivals are Poisson (the count engine does exactly this). For such a
process (a branching process with immigration) the mean and covariance of the state
``z = [entries so far, occupancy]`` obey an exact recursion: with ``z' = z A + a``,

    Var(z') = Aᵀ Var(z) A + N(m),    N(m) = Σ_i m_i Cov(one person's move from i) + arrivals,

where ``m`` is the mean occupancy. A period is a few such steps, so a period maps
``m_t`` to ``(entries_t, m_{t+1})`` with the affine map of :func:`flows.period_maps` plus
noise of covariance ``Q_t`` (:func:`period_noise`). Deviations from the mean persist
for weeks in long-dwell stages; a model that reads them as independent noise from
period to period is overconfident. The count fit's likelihood is instead the Gaussian
with these moments across all periods (:func:`series_covariance`, whitened by
:func:`noise_model`; the linear noise approximation, good for counts of tens and more).
:func:`kalman` computes the same Gaussian period by period — the filtered state at the
data's end starts forecasts — and :func:`moments` gives predictive bands. All work on
many posterior draws at once (numpy).

A check against simulation: one stage, 100 people, each leaving with probability 0.1
per step, nobody arriving — after one step, the occupancy is Binomial(100, 0.9):

>>> e = np.zeros((1, 1)); p = np.array([[0.9]])
>>> n = step_noise(e, p, np.array([100.0]), np.array(0.0), np.array([1.0]), np.eye(1))
>>> float(n[1, 1])  # variance of the occupancy: 100 · 0.9 · 0.1
9.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from funnelsim.inference.flows import (
    Grid,
    Params,
    compose_days,
    daily_rates,
    pressure,
    steady_state,
    step_matrices,
)

__all__ = [
    "step_noise",
    "period_noise",
    "noise_step",
    "kalman_update",
    "measurement_variance",
    "moments",
    "kalman",
    "series_covariance",
    "noise_model",
    "MIN_VARIANCE",
]

#: variance every count has at least (a count is known to about ± 1/2)
MIN_VARIANCE = 0.25


def step_noise(
    e: np.ndarray, p: np.ndarray, m: np.ndarray, b: np.ndarray, entry: np.ndarray, eye: np.ndarray
) -> np.ndarray:
    """Covariance ``(…, 2S, 2S)`` of one step's random moves and arrivals in ``[entries,
    occupancy]``, for ``m (…, S)`` people at the step's start (their mean), move and
    transition probabilities ``e, p (…, S, S)`` and ``b (…)`` expected arrivals (Poisson)
    at the ``entry`` stage (one-hot ``(S,)``).

    A person in stage i moves to j (or repeats, j = i) with probability ``e[i, j]``: the
    entries and the occupancy of j both gain one; stays without an event with
    probability ``p[i, i] − e[i, i]``; else is lost. Their mean move is the row
    ``[e_i, p_i]``; the covariance is the second moment minus its square, summed over
    people (independent) as ``diag``-blocks minus ``Uᵀ diag(m) U``.
    """
    q = (m[..., None, :] @ e)[..., 0, :]  # expected entries from moves (…, S)
    stay = ((p - e) * eye).sum(axis=-1)  # P(no event) per stage
    dq = q[..., None] * eye
    dr = (m * stay)[..., None] * eye
    block = np.concatenate(
        [np.concatenate([dq, dq], axis=-1), np.concatenate([dq, dq + dr], axis=-1)], axis=-2
    )
    u = np.concatenate([e, p], axis=-1)  # (…, S, 2S): each stage's mean move
    both = np.concatenate([entry, entry])
    return (
        block
        - u.swapaxes(-1, -2) @ (m[..., :, None] * u)
        + b[..., None, None] * np.outer(both, both)
    )


def noise_step(
    m: np.ndarray, v: np.ndarray, p: np.ndarray, e: np.ndarray, b: np.ndarray, entry: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One step of :func:`period_noise`: the mean people ``m (…, S)`` and the covariance
    ``v (…, 2S, 2S)`` of ``[entries, occupancy]`` accumulated so far in the period, after
    one more step with matrices ``p, e (…, S, S)`` and ``b (…)`` expected arrivals."""
    s_n = len(entry)
    eye = np.eye(s_n)
    zero = 0.0 * p
    # z = [entries, occupancy] steps as z' = z a: entries += m e, occupancy = m p
    a = np.concatenate(
        [np.concatenate([zero + eye, zero], axis=-1), np.concatenate([e, p], axis=-1)], axis=-2
    )
    v = a.swapaxes(-1, -2) @ v @ a + step_noise(e, p, m, b, entry, eye)
    return (m[..., None, :] @ p)[..., 0, :] + b[..., None] * entry, v


def period_noise(
    p: np.ndarray, e: np.ndarray, b: np.ndarray, m: np.ndarray, steps: int, entry: np.ndarray
) -> np.ndarray:
    """``Q (…, 2S, 2S)``: covariance of a period's entries and end occupancy from the
    random moves and arrivals during it, for a period that starts with ``m (…, S)``
    people (known); ``p, e (…, days, S, S)`` step matrices and ``b (…, days)`` expected
    arrivals per step of each day, each day ``steps`` equal steps. The noise of each
    step is evaluated at the mean path (exact for the covariance when the start is the
    mean, since moves are linear in the people)."""
    s_n = len(entry)
    v = np.zeros(m.shape[:-1] + (2 * s_n, 2 * s_n))
    for d in range(p.shape[-3]):
        for _ in range(steps):
            m, v = noise_step(m, v, p[..., d, :, :], e[..., d, :, :], b[..., d], entry)
    return v


def kalman_update(
    m: np.ndarray,
    cov: np.ndarray,
    maps: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    q: np.ndarray,
    y: np.ndarray,
    r: np.ndarray,
    index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One period of the filter: from the filtered people at the period's start ``m (…, S)``
    with covariance ``cov (…, S, S)``, the period's affine ``maps = (Π, β, F, f)`` (``f``
    with the arrivals) and noise ``q (…, 2S, 2S)``, predict ``[entries, occupancy]``, then
    condition on the observed counts ``y (…, N)`` at positions ``index`` of that vector,
    each with measurement variance ``r (…, N)``.
    Returns the filtered occupancy at the period's end, its covariance, the log
    density of ``y`` given the past and the sum of squared standardised errors ``(…)``."""
    pi, beta, f_mat, f_vec = maps
    s_n = pi.shape[-1]
    mean = np.concatenate(
        [(m[..., None, :] @ f_mat)[..., 0, :] + f_vec, (m[..., None, :] @ pi)[..., 0, :] + beta],
        axis=-1,
    )
    jac = np.concatenate([f_mat, pi], axis=-1)  # (…, S, 2S)
    sig = jac.swapaxes(-1, -2) @ cov @ jac + q
    across = sig[..., :, index]  # (…, 2S, N): covariance of the state with the counts
    s_mat = across[..., index, :] + r[..., None] * np.eye(len(index))
    resid = y - mean[..., index]
    solved = np.linalg.solve(
        s_mat, np.concatenate([resid[..., None], across.swapaxes(-1, -2)], axis=-1)
    )
    w, gain_t = solved[..., 0], solved[..., 1:]  # S⁻¹ v and S⁻¹ Cᵀ
    sq = (resid * w).sum(axis=-1)
    logdet = np.linalg.slogdet(s_mat)[1]
    loglik = -0.5 * (len(index) * np.log(2.0 * np.pi) + logdet + sq)
    mean = mean + (across @ w[..., None])[..., 0]
    sig = sig - across @ gain_t
    return mean[..., s_n:], sig[..., s_n:, s_n:], loglik, sq


def measurement_variance(mu: Any, noise: Any, floor: float) -> Any:
    """Variance of a count beyond the random flows: relative ``noise`` (with its floor)
    around the mean ``mu``, and at least :data:`MIN_VARIANCE`."""
    return (noise**2 + floor**2) * mu**2 + MIN_VARIANCE


# ---------------------------------------------------------------------- numpy drivers
def _terms(grid: Grid, params: Params, off: int | None = None) -> dict[str, np.ndarray]:
    """The per-period maps, the day steps behind them and the start of the funnel."""
    s_n, t_n, n_d = grid.n_stages, grid.n_periods, grid.period_days
    rate, arr = daily_rates(grid, params, pressure(grid, params), off)
    d_n, g_n = rate.shape[:2]
    e, p = step_matrices(grid, rate)
    e = e.reshape(d_n, g_n, t_n, n_d, s_n, s_n)
    p = p.reshape(d_n, g_n, t_n, n_d, s_n, s_n)
    arr = arr.reshape(d_n, g_n, t_n, n_d)
    entry = np.zeros(s_n)
    entry[grid.entry] = 1.0
    b = arr * grid.dt
    pi, beta, f_mat, f_vec = compose_days(
        p, e, b[..., None] * entry, n_d, grid.steps_per_day, np.eye(s_n)
    )
    f_vec = f_vec + arr.sum(axis=-1)[..., None] * entry
    m0 = steady_state(grid, params)
    if params.initial is not None:
        m0 = m0 * np.exp(params.initial)
    return {
        "pi": pi,
        "beta": beta,
        "f_mat": f_mat,
        "f_vec": f_vec,
        "p": p,
        "e": e,
        "b": b,
        "m0": m0,
        "entry": entry,
    }


def _mean_path(
    t: dict[str, np.ndarray], m: np.ndarray, first: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[entries, occupancy]`` per period ``(D, G, T−first, 2S)`` from ``m`` people at
    the start of period ``first``, and the people at each period's start."""
    out, starts = [], []
    for k in range(first, t["pi"].shape[2]):
        starts.append(m)
        ent = np.einsum("dgi,dgij->dgj", m, t["f_mat"][:, :, k]) + t["f_vec"][:, :, k]
        m = np.einsum("dgi,dgij->dgj", m, t["pi"][:, :, k]) + t["beta"][:, :, k]
        out.append(np.concatenate([ent, m], axis=-1))
    return np.stack(out, axis=2), np.stack(starts, axis=2)


def _noise(t: dict[str, np.ndarray], starts: np.ndarray, first: int, grid: Grid) -> np.ndarray:
    sl = slice(first, None)
    return period_noise(
        t["p"][:, :, sl], t["e"][:, :, sl], t["b"][:, :, sl], starts, grid.steps_per_day, t["entry"]
    )


def _chunk(
    grid: Grid, params: Params, start: tuple[np.ndarray, np.ndarray] | None, part: slice
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The terms of some draws, and their people at the start with its covariance (the
    fitted start, people Poisson around it; or the given ``start``)."""
    t = _terms(grid, params.take(part))
    if start is None:
        return t, t["m0"], t["m0"][..., None] * np.eye(grid.n_stages)
    return t, start[0][part], start[1][part]


def moments(
    grid: Grid,
    params: Params,
    *,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    first: int = 0,
    chunk: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of every ``[entries, occupancy]`` count per period ``(D, G, T',
    2S)`` under random flows (no measurement noise): from the funnel's start (people
    Poisson around the fitted start, as in a steady state) or, with ``start = (m, cov)``,
    from ``m (D, G, S)`` people with covariance ``cov`` at the start of period ``first``
    (a forecast from a filtered state); ``T' = T − first``."""
    means, variances = [], []
    for lo in range(0, params.rate.shape[0], chunk):
        t, m, cov = _chunk(grid, params, start, slice(lo, lo + chunk))
        mean, starts = _mean_path(t, m, first)
        q = _noise(t, starts, first, grid)
        var = np.empty_like(mean)
        s_n = grid.n_stages
        for k in range(mean.shape[2]):
            jac = np.concatenate([t["f_mat"][:, :, first + k], t["pi"][:, :, first + k]], axis=-1)
            sig = np.swapaxes(jac, -1, -2) @ cov @ jac + q[:, :, k]
            var[:, :, k] = np.diagonal(sig, axis1=-2, axis2=-1)
            cov = sig[..., s_n:, s_n:]
        means.append(mean)
        variances.append(var)
    return np.concatenate(means), np.concatenate(variances)


def kalman(
    grid: Grid,
    params: Params,
    counts: np.ndarray,
    index: np.ndarray,
    noise: np.ndarray,
    floor: float,
    *,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    chunk: int = 200,
) -> dict[str, np.ndarray]:
    """Filter the observed ``counts (G, T, N)`` — or ``(D, G, T, N)``, one set per draw —
    (series at ``index`` of ``[entries, occupancy]``, each with relative measurement
    ``noise (D, N)``) for each draw, from the fitted start (people Poisson around it) or
    from ``start = (m, cov)``. Returns ``loglik (D,)`` (the count fit's likelihood),
    ``chi2 (D,)`` (the sum of squared standardised one-step-ahead errors: about the
    number of counts when the model is right), and the filtered people at the end of
    the counts ``m (D, G, S)`` with their covariance ``cov (D, G, S, S)``.

    The grid may be longer than the counts (the rest is not used)."""
    out: dict[str, list[np.ndarray]] = {"loglik": [], "chi2": [], "m": [], "cov": []}
    t_n = counts.shape[-2]
    for lo in range(0, params.rate.shape[0], chunk):
        t, m, cov = _chunk(grid, params, start, slice(lo, lo + chunk))
        mean, starts = _mean_path(t, m, 0)
        q = _noise(t, starts, 0, grid)
        r = measurement_variance(mean[..., index], noise[lo : lo + chunk, None, None, :], floor)
        y = counts[lo : lo + chunk] if counts.ndim == 4 else counts[None]
        ll = np.zeros(m.shape[:2])
        chi2 = np.zeros(m.shape[:2])
        for k in range(t_n):
            maps = (t["pi"][:, :, k], t["beta"][:, :, k], t["f_mat"][:, :, k], t["f_vec"][:, :, k])
            m, cov, step, sq = kalman_update(
                m, cov, maps, q[:, :, k], y[:, :, k], r[:, :, k], index
            )
            ll = ll + step
            chi2 = chi2 + sq
        out["loglik"].append(ll.sum(axis=1))
        out["chi2"].append(chi2.sum(axis=1))
        out["m"].append(m)
        out["cov"].append(cov)
    return {k: np.concatenate(v) for k, v in out.items()}


def series_covariance(
    grid: Grid, params: Params, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For one draw (``params`` with one row): the mean ``(G, T·N)`` of the observed series
    (period after period, series within a period) and their covariance under random flows
    ``(G, T·N, T·N)`` — across periods too (measurement noise not included).

    Every count is linear in the people at the start (Poisson around the fitted start)
    and in each period's noise ``w_t`` (covariance ``Q_t = R_t R_tᵀ``): the loadings of
    the counts on those independent standard normal parts are propagated period by
    period, and the covariance is their inner product."""
    t = _terms(grid, params)
    mean, starts = _mean_path(t, t["m0"], 0)
    q = _noise(t, starts, 0, grid)[0]  # (G, T, 2S, 2S)
    val, vec = np.linalg.eigh(q)
    root = vec * np.sqrt(np.clip(val, 0.0, None))[..., None, :]  # Q = root rootᵀ
    s_n, t_n, n_n = grid.n_stages, grid.n_periods, len(index)
    dim = s_n + 2 * s_n * t_n
    covs = []
    for g in range(grid.n_segments):
        load = np.zeros((dim, s_n))
        load[:s_n] = np.diag(np.sqrt(t["m0"][0, g]))
        out = np.zeros((dim, t_n * n_n))
        for k in range(t_n):
            jac = np.concatenate([t["f_mat"][0, g, k], t["pi"][0, g, k]], axis=-1)
            z = load @ jac
            z[s_n + 2 * s_n * k : s_n + 2 * s_n * (k + 1)] += root[g, k].T
            out[:, k * n_n : (k + 1) * n_n] = z[:, index]
            load = z[:, s_n:]
        covs.append(out.T @ out)
    return mean[0][..., index].reshape(grid.n_segments, -1), np.stack(covs)


def noise_model(
    grid: Grid,
    params: Params,
    index: np.ndarray,
    counts: np.ndarray,
    floor: float,
    free: int = 0,
    noise: float | None = None,
) -> tuple[np.ndarray, float]:
    """The whitening matrices ``W (G, T·N, T·N)`` of the count fit's likelihood
    (``W Σ Wᵀ = I``, so ``−½ |W (y − μ)|²`` is the Gaussian log density up to a constant)
    and the relative measurement noise, for the counts ``(G, T, N)`` and one draw of
    ``params`` (the fit's first run): the noise is the smallest ``≥ 0`` at which the
    standardised errors have mean square 1 (``free`` parameters subtracted from the
    number of counts), so counts noisier than random flows are not over-trusted; or the
    ``noise`` given."""
    mean, cov = series_covariance(grid, params, index)
    resid = counts.reshape(counts.shape[0], -1) - mean
    dof = max(resid.size - free, 1)

    def chol(level: float) -> np.ndarray:
        r = measurement_variance(mean, level, floor)
        return np.linalg.cholesky(cov + r[..., None] * np.eye(mean.shape[-1]))

    def mean_square(level: float) -> float:
        c = chol(level)
        z = np.linalg.solve(c, resid[..., None])[..., 0]
        return float((z**2).sum() / dof)

    if noise is not None:
        return np.linalg.inv(chol(noise)), noise
    lo, hi = 0.0, 1.0
    if mean_square(lo) > 1.0:
        for _ in range(40):  # bisection: the mean square falls as the noise grows
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if mean_square(mid) > 1.0 else (lo, mid)
    level = hi if mean_square(lo) > 1.0 else lo
    return np.linalg.inv(chol(level)), level
