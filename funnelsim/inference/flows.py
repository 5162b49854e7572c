"""The mean flows of a funnel on a data grid, in numpy, over many posterior draws at once.

This is the ``expected`` engine's recursion ``m_{s+1} = m_s P_s + b_s`` written for
fitting aggregate counts: one step per ``dt`` days, competing-risk step probabilities,
each day with its own campaign-modified rates and arrivals, arrivals joining after the
step's moves (as the count engines do), and for each reporting period the entries into
every stage (moves in, repeats and arrivals) and the people in every stage at the
period's end — equal to the expected engine's numbers. The days of one period are
composed first (a few batched matrix products over all periods at once), so the only
sequential part is one affine map per period. :mod:`funnelsim.inference.aggregate` builds the same
computation in PyTensor for the sampler; tests hold the two and the expected engine
to each other.

Campaign pressure is the scenario's: geometric adstock of daily spend (``carryover``
per day), then Hill saturation ``x^k / (x^k + h^k)``. The adstock is exact, computed in
7-day blocks: within a block by a small triangular product, across blocks by a
geometric sum (no loop over days).

>>> import numpy as np
>>> spend = np.array([[100.0, 0, 0, 0, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0]])
>>> x = adstock(spend, np.array([0.5]))
>>> np.round(x[0, [0, 1, 2, 7, 8]], 4).tolist()
[100.0, 50.0, 25.0, 50.7812, 25.3906]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Grid",
    "Params",
    "adstock",
    "hill",
    "pressure",
    "arrival_terms",
    "mean_flows",
    "BLOCK",
]

#: days per adstock block
BLOCK = 7


@dataclass(frozen=True)
class Grid:
    """The data grid and the model's structure (no parameter values).

    ``edges`` are ``(source, target)`` stage indices with ``target == S`` for ``lost``
    (S = number of stages without lost). ``spend`` is daily spend ``(C, days)`` from
    ``spend_start``; history day 0 is ``dates[0]``. ``effect_campaign[f]`` is the
    campaign of effect f, ``effect_edge[f]`` its edge index or -1 for arrivals.
    """

    stages: tuple[str, ...]
    entry: int
    edges: tuple[tuple[int, int], ...]
    dates: pd.DatetimeIndex
    period_days: int
    steps_per_day: int
    campaigns: tuple[str, ...]
    spend: np.ndarray
    spend_offset: int  # days from spend_start to dates[0]
    effect_campaign: np.ndarray
    effect_edge: np.ndarray
    shape: np.ndarray  # (C,) Hill shape of each campaign
    yearly_terms: int
    weekly_terms: int
    trend_days: float  # days over which ``trend`` is the change of log arrivals
    n_segments: int = 1
    segments: tuple[str, ...] = ("all",)

    @property
    def n_stages(self) -> int:
        return len(self.stages)

    @property
    def n_periods(self) -> int:
        return len(self.dates)

    @property
    def n_days(self) -> int:
        return self.n_periods * self.period_days

    @property
    def dt(self) -> float:
        return 1.0 / self.steps_per_day

    def extended(self, n_periods: int) -> Grid:
        """The same grid over ``n_periods`` periods (forecasts past the fitted data;
        spend must cover them)."""
        from dataclasses import replace

        step = pd.Timedelta(days=self.period_days)
        dates = pd.DatetimeIndex([self.dates[0] + k * step for k in range(n_periods)])
        return replace(self, dates=dates)

    def days(self) -> pd.DatetimeIndex:
        return pd.date_range(self.dates[0], periods=self.n_days, freq="D")

    def blocked_spend(self) -> tuple[np.ndarray, int]:
        """Spend ``(C, Nb, 7)`` in 7-day blocks, padded with zeros at the front so that
        history day 0 starts a block, and at the end to cover the grid; and the index of
        the block holding day 0."""
        c_n, d_n = self.spend.shape
        front = (-self.spend_offset) % BLOCK
        need = self.spend_offset + self.n_days
        padded = np.zeros((c_n, front + max(need, d_n)))
        padded[:, front : front + d_n] = self.spend
        padded = padded[:, : front + need]
        back = (-padded.shape[1]) % BLOCK
        padded = np.concatenate([padded, np.zeros((c_n, back))], axis=1)
        return padded.reshape(c_n, -1, BLOCK), (front + self.spend_offset) // BLOCK


@dataclass(frozen=True)
class Params:
    """Parameter values, each with a leading draw axis ``D``.

    ``rate (D, G, K)`` base hazards per day; ``log_lift (D, F)``; ``carryover (D, C)``;
    ``half_saturation (D, C)``; ``level (D, G)`` baseline arrivals per day at day 0
    before seasonality; ``trend (D,)``; ``yearly (D, 2·Y)``, ``weekly (D, 2·W)`` Fourier
    coefficients (cos, sin per order)."""

    rate: np.ndarray
    log_lift: np.ndarray
    carryover: np.ndarray
    half_saturation: np.ndarray
    level: np.ndarray
    trend: np.ndarray
    yearly: np.ndarray
    weekly: np.ndarray
    initial: np.ndarray | None = None  # (D, G, S) log-multiplier of the steady start

    def take(self, idx: np.ndarray | slice) -> Params:
        values: dict[str, Any] = {f: getattr(self, f) for f in self.__dataclass_fields__}
        return Params(**{f: None if v is None else v[idx] for f, v in values.items()})  # type: ignore[arg-type]


def adstock(spend: np.ndarray, carryover: np.ndarray) -> np.ndarray:
    """Geometric adstock ``x[t] = spend[t] + c·x[t−1]`` of daily spend ``(C, days)`` for
    carryover ``c`` of shape ``(..., C)``; returns ``(..., C, days)`` (exact, blockwise)."""
    c_n, d_n = spend.shape
    back = (-d_n) % BLOCK
    blocks = np.concatenate([spend, np.zeros((c_n, back))], axis=1).reshape(c_n, -1, BLOCK)
    return adstock_blocks(blocks, carryover)[..., :d_n]


def adstock_blocks(blocks: np.ndarray, carryover: np.ndarray) -> np.ndarray:
    """Adstock of spend in blocks ``(C, Nb, B)``; returns ``(..., C, Nb·B)``."""
    c_n, nb, b = blocks.shape
    c = np.asarray(carryover, dtype=float)[..., :, None, None]  # (..., C, 1, 1)
    k = np.arange(b)
    lag = k[:, None] - k[None, :]  # (B, B) day k from day j of the same block
    inner_w = np.where(lag >= 0, c ** np.maximum(lag, 0), 0.0)  # (..., C, B, B)
    inner = np.einsum("...ckj,cnj->...cnk", inner_w, blocks)  # (..., C, Nb, B)
    u = np.arange(nb)
    blag = u[:, None] - u[None, :]
    cross = np.where(blag >= 0, c ** (b * np.maximum(blag, 0)), 0.0)  # (..., C, Nb, Nb)
    end = np.einsum("...cnu,...cu->...cn", cross, inner[..., -1])  # adstock at block ends
    prev = np.concatenate([np.zeros_like(end[..., :1]), end[..., :-1]], axis=-1)
    carried = c ** (k + 1.0)  # (..., C, 1, B)
    x = inner + carried * prev[..., None]
    return x.reshape(*x.shape[:-2], nb * b)


def hill(x: np.ndarray, half: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Hill saturation ``x^k / (x^k + h^k)`` (0 at no spend, ½ at ``h``).

    >>> hill(np.array([0.0, 100.0, 300.0]), np.array(100.0), np.array(1.0)).tolist()
    [0.0, 0.5, 0.75]
    """
    ratio = (np.maximum(x, 0.0) / half) ** shape
    return ratio / (1.0 + ratio)


def pressure(grid: Grid, params: Params) -> np.ndarray:
    """Daily pressure of each campaign over the grid's days ``(D, C, days)``."""
    blocks, first = grid.blocked_spend()
    x = adstock_blocks(blocks, params.carryover)  # (D, C, Nb·B)
    x = x[..., first * BLOCK : first * BLOCK + grid.n_days]
    return hill(x, params.half_saturation[..., None], grid.shape[:, None])


def arrival_terms(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Covariates of log baseline arrivals per day: time for the trend ``(days,)`` and
    the yearly ``(days, 2Y)`` and weekly ``(days, 2W)`` Fourier columns."""
    days = grid.days()
    t = np.arange(grid.n_days) / grid.trend_days
    epoch = (days - pd.Timestamp("2000-01-01")).days.to_numpy(float)

    def fourier(period: float, terms: int) -> np.ndarray:
        cols = []
        for r in range(1, terms + 1):
            angle = 2 * np.pi * r * epoch / period
            cols += [np.cos(angle), np.sin(angle)]
        return np.array(cols).T.reshape(len(epoch), 2 * terms)

    return t, fourier(365.25, grid.yearly_terms), fourier(7.0, grid.weekly_terms)


def daily_rates(
    grid: Grid, params: Params, press: np.ndarray, off: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Hazards per day ``(D, G, days, K)`` (base rates times ``exp(Σ_f effect·pressure)``)
    and arrivals per day ``(D, G, days)``. With ``off`` the pressure of that campaign is
    taken as zero (the campaign switched off)."""
    t, yearly, weekly = arrival_terms(grid)
    if off is not None:
        press = press.copy()
        press[:, off] = 0.0
    fx = params.log_lift[:, :, None] * press[:, grid.effect_campaign, :]  # (D, F, days)
    on_edge, on_arr = effect_maps(grid)
    mult = np.exp(np.einsum("dfn,fk->dnk", fx, on_edge))  # (D, days, K)
    rate = params.rate[:, :, None, :] * mult[:, None]  # (D, G, days, K)
    log_a = (
        params.trend[:, None] * t
        + params.yearly @ yearly.T
        + params.weekly @ weekly.T
        + np.einsum("dfn,f->dn", fx, on_arr)
    )  # (D, days)
    return rate, params.level[:, :, None] * np.exp(log_a)[:, None, :]


def effect_maps(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Which edge ``(F, K)`` and whether arrivals ``(F,)`` each effect moves."""
    on_edge = np.zeros((len(grid.effect_edge), len(grid.edges)))
    for f, k in enumerate(grid.effect_edge):
        if k >= 0:
            on_edge[f, k] = 1.0
    return on_edge, (grid.effect_edge < 0).astype(float)


def step_matrices(grid: Grid, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step move probabilities ``E (..., S, S)`` (entries, repeats on the diagonal)
    and the transition matrix ``P`` (stay added to the diagonal) from hazards ``(..., K)``."""
    s_n = grid.n_stages
    src = np.array([i for i, _ in grid.edges])
    lam = np.zeros(rate.shape[:-1] + (s_n,))
    for k, i in enumerate(src):
        lam[..., i] += rate[..., k]
    dt = grid.dt
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(lam > 0, -np.expm1(-lam * dt) / np.where(lam > 0, lam, 1.0), dt)
    e = np.zeros(rate.shape[:-1] + (s_n, s_n))
    for k, (i, j) in enumerate(grid.edges):
        if j < s_n:
            e[..., i, j] += rate[..., k] * g[..., i]
    p = e.copy()
    idx = np.arange(s_n)
    p[..., idx, idx] += np.exp(-lam * dt)
    return e, p


def period_maps(p: Any, e: Any, b: Any, n: int, eye: Any) -> tuple[Any, Any, Any, Any]:
    """Compose ``n`` steps with constant step matrix ``p``, move matrix ``e`` and arrivals
    per step ``b (..., S)``: returns ``(Π, β, F, f)`` such that a period starting with
    ``m`` people ends with ``m Π + β`` and has ``m F + f`` entries (arrivals excluded).

    With ``S(n) = Σ_{d<n} P^d`` and ``T(n) = Σ_{d<n} S(d)``: ``Π = P^n``, ``β = b S(n)``,
    ``F = S(n) E``, ``f = b T(n) E`` — by doubling, O(log n) matrix products. Works on
    numpy arrays and PyTensor tensors alike (``eye`` is the identity of either).

    >>> p = np.array([[0.5, 0.3], [0.0, 0.9]]); e = p * [[0, 1], [0, 0]]
    >>> pi, beta, f_mat, f_vec = period_maps(p, e, np.array([10.0, 0.0]), 3, np.eye(2))
    >>> m, ent = np.zeros(2), np.zeros(2)
    >>> for _ in range(3):
    ...     ent = ent + m @ e; m = m @ p + [10.0, 0.0]
    >>> np.allclose(m, beta) and np.allclose(ent, f_vec)
    True
    """
    if n == 1:
        return p, b, e, 0.0 * b
    pow_, s_, t_ = p, eye + 0.0 * p, 0.0 * p
    m = 1
    for bit in bin(n)[3:]:
        t_ = t_ + m * s_ + pow_ @ t_
        s_ = s_ + pow_ @ s_
        pow_ = pow_ @ pow_
        m *= 2
        if bit == "1":
            t_ = t_ + s_
            s_ = s_ + pow_
            pow_ = pow_ @ p
            m += 1
    bv = b[..., None, :]
    beta = (bv @ s_)[..., 0, :]
    f_vec = (bv @ (t_ @ e))[..., 0, :]
    return pow_, beta, s_ @ e, f_vec


def compose_days(
    p: Any, e: Any, b: Any, days: int, steps: int, eye: Any
) -> tuple[Any, Any, Any, Any]:
    """The ``(Π, β, F, f)`` of :func:`period_maps` for a period of days with their own
    step matrices ``p, e (..., days, S, S)`` and arrivals per step ``b (..., days, S)``,
    each of the ``days`` days ``steps`` equal steps: exact, day by day (numpy or PyTensor).

    >>> p = np.random.default_rng(1).uniform(0.0, 0.45, (2, 2, 2))  # 2 days, 2 stages
    >>> e = p * [[0, 1], [1, 0]]; b = np.array([[4.0, 0.0], [6.0, 0.0]])
    >>> pi, beta, f_mat, f_vec = compose_days(p, e, b, 2, 1, np.eye(2))
    >>> m0 = np.array([1.0, 2.0]); m, ent = m0, np.zeros(2)
    >>> for d in range(2):
    ...     ent = ent + m @ e[d]; m = m @ p[d] + b[d]
    >>> np.allclose(m0 @ pi + beta, m), np.allclose(m0 @ f_mat + f_vec, ent)
    (True, True)"""
    pi, beta, f_mat, f_vec = eye, 0.0 * b[..., 0, :], 0.0 * eye, 0.0 * b[..., 0, :]
    for d in range(days):
        pd_, bd_, fd, gd = period_maps(p[..., d, :, :], e[..., d, :, :], b[..., d, :], steps, eye)
        if d == 0:  # the day starts the period: no product with the identity needed
            f_mat, f_vec, pi, beta = fd, gd, pd_, bd_
            continue
        f_mat = f_mat + pi @ fd
        f_vec = f_vec + (beta[..., None, :] @ fd)[..., 0, :] + gd
        pi = pi @ pd_
        beta = (beta[..., None, :] @ pd_)[..., 0, :] + bd_
    return pi, beta, f_mat, f_vec


def mean_flows(
    grid: Grid,
    params: Params,
    *,
    off: int | None = None,
    initial: np.ndarray | None = None,
    chunk: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected entries and end-of-period occupancy ``(D, G, T, S)`` for each draw,
    starting from ``initial`` people per stage ``(D, G, S)`` or, by default, from the
    steady state of day 0's baseline (arrivals and rates without campaign pressure)
    times ``exp(params.initial)``.
    ``off``: the index of a campaign to switch off (its pressure taken as zero)."""
    d_n = params.rate.shape[0]
    out_e, out_o = [], []
    for lo in range(0, d_n, chunk):
        part = params.take(slice(lo, lo + chunk))
        init = None if initial is None else initial[lo : lo + chunk]
        e, o = _mean_flows(grid, part, pressure(grid, part), off, init)
        out_e.append(e)
        out_o.append(o)
    return np.concatenate(out_e), np.concatenate(out_o)


def _mean_flows(
    grid: Grid, params: Params, press: np.ndarray, off: int | None, initial: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    s_n, t_n, n_d = grid.n_stages, grid.n_periods, grid.period_days
    rate, arr = daily_rates(grid, params, press, off)
    d_n, g_n = rate.shape[:2]
    e, p = step_matrices(grid, rate)  # (D, G, days, S, S)
    e = e.reshape(d_n, g_n, t_n, n_d, s_n, s_n)
    p = p.reshape(d_n, g_n, t_n, n_d, s_n, s_n)
    arr = arr.reshape(d_n, g_n, t_n, n_d)
    b = np.zeros((d_n, g_n, t_n, n_d, s_n))
    b[..., grid.entry] = arr * grid.dt
    pi, beta, f_mat, f_vec = compose_days(p, e, b, n_d, grid.steps_per_day, np.eye(s_n))
    if initial is not None:
        m = np.asarray(initial, float)
    else:
        m = steady_state(grid, params)
        if params.initial is not None:
            m = m * np.exp(params.initial)
    entries = np.empty((d_n, g_n, t_n, s_n))
    occ = np.empty((d_n, g_n, t_n, s_n))
    for t in range(t_n):
        entries[:, :, t] = np.einsum("dgi,dgij->dgj", m, f_mat[:, :, t]) + f_vec[:, :, t]
        entries[:, :, t, grid.entry] += arr[:, :, t].sum(axis=-1)
        m = np.einsum("dgi,dgij->dgj", m, pi[:, :, t]) + beta[:, :, t]
        occ[:, :, t] = m
    return entries, occ


def steady_state(grid: Grid, params: Params) -> np.ndarray:
    """People per stage ``(D, G, S)`` where day 0's baseline (arrivals and rates without
    campaign pressure) would hold the funnel: ``m = b (I − P)^−1``. A stage nobody
    leaves (no edges out) has no steady state and starts empty."""
    s_n = grid.n_stages
    _, p0 = step_matrices(grid, params.rate)  # (D, G, S, S)
    _, y0, w0 = (a[0] for a in arrival_terms(grid))
    b0 = params.level * np.exp(params.yearly @ y0 + params.weekly @ w0)[:, None] * grid.dt
    has_out = np.zeros(s_n, bool)
    has_out[[i for i, _ in grid.edges]] = True
    rhs = np.zeros(p0.shape[:-1])
    rhs[..., grid.entry] = b0
    rhs = rhs * has_out  # a stage nobody leaves has no steady state: it starts empty
    a = np.where(has_out[:, None], np.swapaxes(np.eye(s_n) - p0, -1, -2), np.eye(s_n))
    return np.linalg.solve(a, rhs[..., None])[..., 0]
