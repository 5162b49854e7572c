"""The step loop every population engine runs, and its random numbers, compiled with numba.

One function, :func:`simulate`, runs replicates ``r0..r1`` of a compiled model through
every step and adds their period totals into output arrays. With ``stochastic`` it
draws whole numbers of people; without, it moves expected numbers. Arrays are float64
either way (whole numbers are exact below 2**53), so one compiled signature serves
both engines. Each step:

1. arrivals by cell from the state at the start of the step (word of mouth counts the
   referrers present then): Poisson per cell, or with a finite market one Binomial from
   the unaware pool split between cells by conditional binomials;
2. each compartment's people move along its event slots by conditional binomials
   (a multinomial, the last slot "no event" taking the rest);
3. the arrivals join their entry compartment.

**Sub-streams.** Every draw belongs to a sub-stream named by a 64-bit id: the hash of
(replicate key, step) from :func:`step_stream`, then of (lane, index) from
:func:`substream`: moves ``(0, c·m + j)`` for slot j of compartment c, Poisson
arrivals ``(1, k)``, the unaware-pool draw ``(2, 0)`` and its split ``(3, k)``.
Uniform number ``i`` of a sub-stream is a keyed hash of ``(id, i)`` (SplitMix64's
output function, which passes BigCrush on consecutive counters). No draw depends on
how many draws came before it elsewhere: two plans that differ in one slot's
probability use the same uniforms in every other slot, whatever the number of
replicates, plans or workers; other draws change only where the number of people
drawn from changes (the later, conditional slots of that compartment, and later
steps).

**Exact samplers** for any ``n`` up to 2**53: binomial by inversion when
``n·min(p, 1 − p) < 10`` (monotone in ``p``, which pairs plans best) and otherwise
Hörmann's BTRS (transformed rejection with squeeze, 1993), whose acceptance test is
evaluated in a cancellation-free form with Stirling tail corrections so it stays exact
at n = 1e12; Poisson by inversion below a mean of 10 and Hörmann's PTRS above, with
the same care for the log-density.

The samplers and the loop share one module on purpose: numba's on-disk cache only
watches the file a function is defined in, so a caller in another file would keep a
stale copy of an edited sampler.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, uint64

__all__ = [
    "simulate",
    "step_stream",
    "substream",
    "uniform",
    "binomial",
    "poisson",
    "binomial_many",
    "poisson_many",
]

_GOLDEN = uint64(0x9E3779B97F4A7C15)
_M1 = uint64(0xBF58476D1CE4E5B9)
_M2 = uint64(0x94D049BB133111EB)
_LANE = uint64(0xD1B54A32D192ED03)
_STEP = uint64(0xABC98388FB8FAC03)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
_HALF_LOG_2PI = 0.9189385332046728
# log k! − [(k + ½) log(k + 1) − (k + 1) + ½ log 2π] for k = 0..9 (Hörmann's fc)
_FC = np.array(
    [
        0.08106146679532726,
        0.04134069595540929,
        0.02767792568499834,
        0.02079067210376509,
        0.01664469118982119,
        0.01387612882307075,
        0.01189670994589177,
        0.01041126526197209,
        0.009255462182712733,
        0.008330563433362871,
    ]
)
_INVERSION_BINOMIAL = 10.0
_INVERSION_POISSON = 10.0


@njit(cache=True, nogil=True)
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> uint64(30))) * _M1
    z = (z ^ (z >> uint64(27))) * _M2
    return z ^ (z >> uint64(31))


@njit(cache=True, nogil=True)
def step_stream(key0: np.uint64, key1: np.uint64, step: int) -> np.uint64:
    """The id shared by every sub-stream of (replicate key, step)."""
    h = _mix(key0 ^ _GOLDEN)
    h = _mix(h ^ key1)
    return _mix(h ^ (uint64(step) * _STEP + uint64(1)))


@njit(cache=True, nogil=True)
def substream(step_id: np.uint64, lane: int, index: int) -> np.uint64:
    """The id of sub-stream (lane, index) within a :func:`step_stream`."""
    return _mix(step_id ^ (uint64(lane) * _LANE + uint64(index) + uint64(1)))


@njit(cache=True, nogil=True)
def uniform(stream: np.uint64, i: int) -> float:
    """Uniform number ``i`` in [0, 1) of a sub-stream."""
    return float(_mix(stream + uint64(i + 1) * _GOLDEN) >> uint64(11)) * _TO_UNIT


@njit(cache=True, nogil=True)
def _fc(k: float) -> float:
    """Stirling tail of log k! (see ``_FC``)."""
    if k < 10:
        return _FC[int(k)]
    r = 1.0 / (k + 1.0)
    r2 = r * r
    return (1.0 / 12.0 - (1.0 / 360.0 - r2 / 1260.0) * r2) * r


@njit(cache=True, nogil=True)
def _binomial_inversion(n: int, p: float, stream: np.uint64) -> int:
    q0 = math.exp(n * math.log1p(-p))
    i = 0
    u = uniform(stream, i)
    if u <= q0:
        return 0
    q = 1.0 - p
    mean = n * p
    bound = min(float(n), mean + 10.0 * math.sqrt(mean * q + 1.0))
    ratio = p / q
    x = 0
    px = q0
    while u > px:
        x += 1
        if x > bound:  # rounding left u above the total: start again with a fresh u
            i += 1
            u = uniform(stream, i)
            x = 0
            px = q0
        else:
            u -= px
            px = px * ((n - x + 1) * ratio / x)  # the factor pipelines; px is the chain
    return x


@njit(cache=True, nogil=True)
def _binomial_btrs(n: int, p: float, stream: np.uint64) -> int:
    q = 1.0 - p
    nf = float(n)
    spq = math.sqrt(nf * p * q)
    b = 1.15 + 2.53 * spq
    a = -0.0873 + 0.0248 * b + 0.01 * p
    c = nf * p + 0.5
    v_r = 0.92 - 4.2 / b
    alpha = (2.83 + 5.1 / b) * spq
    m = math.floor((nf + 1.0) * p)
    fc_m = _fc(m) + _fc(nf - m)
    i = 0
    while True:
        u = uniform(stream, i) - 0.5
        v = uniform(stream, i + 1)
        i += 2
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0.0 or k > nf:
            continue
        if us >= 0.07 and v <= v_r:
            return int(k)
        if v <= 0.0:
            return int(k)
        lv = math.log(v * alpha / (a / (us * us) + b))
        # log f(k)/f(m), f the binomial pmf, without cancelling large terms
        d = k - m
        bound = (
            d * math.log((nf - k + 1.0) * p / ((k + 1.0) * q))
            + (m + 0.5) * math.log1p(-d / (k + 1.0))
            + (nf - m + 0.5) * math.log1p(d / (nf - k + 1.0))
            + fc_m
            - _fc(k)
            - _fc(nf - k)
        )
        if lv <= bound:
            return int(k)
    return 0  # unreachable


@njit(cache=True, nogil=True)
def binomial(n: int, p: float, stream: np.uint64) -> int:
    """An exact Binomial(n, p) draw from sub-stream ``stream`` (n ≥ 0)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    flip = p > 0.5
    pp = 1.0 - p if flip else p
    if n * pp < _INVERSION_BINOMIAL:
        x = _binomial_inversion(n, pp, stream)
    else:
        x = _binomial_btrs(n, pp, stream)
    return n - x if flip else x


@njit(cache=True, nogil=True)
def _poisson_ptrs(lam: float, stream: np.uint64) -> int:
    slam = math.sqrt(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    log_inv_alpha = math.log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    i = 0
    while True:
        u = uniform(stream, i) - 0.5
        v = uniform(stream, i + 1)
        i += 2
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return int(k)
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if v <= 0.0:
            return int(k)
        # log(λ^k e^−λ / k!) with Stirling's form of log k!, free of cancellation
        log_pmf = (
            (k - lam)
            + 1.0
            - k * math.log1p((k + 1.0 - lam) / lam)
            - 0.5 * math.log(k + 1.0)
            - _HALF_LOG_2PI
            - _fc(k)
        )
        if math.log(v) + log_inv_alpha - math.log(a / (us * us) + b) <= log_pmf:
            return int(k)
    return 0  # unreachable


@njit(cache=True, nogil=True)
def _poisson_inversion(lam: float, stream: np.uint64) -> int:
    p0 = math.exp(-lam)
    bound = lam + 10.0 * math.sqrt(lam) + 20.0
    i = 0
    u = uniform(stream, i)
    x = 0
    px = p0
    while u > px:
        x += 1
        if x > bound:
            i += 1
            u = uniform(stream, i)
            x = 0
            px = p0
        else:
            u -= px
            px = px * (lam / x)
    return x


@njit(cache=True, nogil=True)
def poisson(lam: float, stream: np.uint64) -> int:
    """An exact Poisson(lam) draw from sub-stream ``stream``."""
    if lam <= 0.0:
        return 0
    if lam < _INVERSION_POISSON:
        return _poisson_inversion(lam, stream)
    return _poisson_ptrs(lam, stream)


@njit(cache=True, nogil=True)
def binomial_many(n: np.ndarray, p: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``Binomial(n[i], p[i])`` for each i, draw i from sub-stream (0, i) of step 0."""
    out = np.empty(len(n), dtype=np.int64)
    step_id = step_stream(key[0], key[1], 0)
    for i in range(len(n)):
        out[i] = binomial(n[i], p[i], substream(step_id, 0, i))
    return out


@njit(cache=True, nogil=True)
def poisson_many(lam: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``Poisson(lam[i])`` for each i, draw i from sub-stream (1, i) of step 0."""
    out = np.empty(len(lam), dtype=np.int64)
    step_id = step_stream(key[0], key[1], 0)
    for i in range(len(lam)):
        out[i] = poisson(lam[i], substream(step_id, 1, i))
    return out


_MOVES, _ARRIVALS, _POOL, _SPLIT = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def simulate(
    stochastic,
    keys,
    r0,
    r1,
    probs,
    external,
    dest,
    slot_edge,
    stage_of,
    cell_of,
    arrival_comp,
    referral_rate,
    referral_cells,
    segment_shares,
    initial,
    unaware0,
    market,
    dt,
    steps_per_period,
    occupancy,
    flows,
    arrivals,
    entries,
):  # pragma: no cover - compiled; covered through the engines
    """Run replicates ``r0..r1``; add into ``occupancy (R, T, S)``, ``flows (R, T, S·S)``,
    ``arrivals (R, T, K)`` and ``entries (R, T, S, K)`` (zeroed by the caller).

    ``probs (R | 1, steps | 1, C, m + 1)``, ``external (R | 1, steps | 1, K)`` and
    ``initial (R | 1, C)`` may carry one set per replicate. ``market`` ≤ 0: no finite
    market.
    """
    n_comp, m = dest.shape
    n_cells = len(arrival_comp)
    n_steps = occupancy.shape[1] * steps_per_period
    refer = referral_rate.any()
    state = np.empty(n_comp, dtype=occupancy.dtype)
    nxt = np.empty(n_comp, dtype=occupancy.dtype)
    new = np.empty(n_cells, dtype=occupancy.dtype)
    lam = np.empty(n_cells)
    for r in range(r0, r1):
        key0, key1 = keys[r, 0], keys[r, 1]
        pr = r if probs.shape[0] > 1 else 0
        er = r if external.shape[0] > 1 else 0
        state[:] = initial[r if initial.shape[0] > 1 else 0]
        unaware = unaware0
        for step in range(n_steps):
            t = step // steps_per_period
            here = step_stream(key0, key1, step)
            ps = step if probs.shape[1] > 1 else 0
            es = step if external.shape[1] > 1 else 0
            # 1. arrivals, from the state at the start of the step
            lam[:] = external[er, es]
            if refer:
                wom = 0.0
                for c in range(n_comp):
                    wom += state[c] * referral_rate[c]
                for g in range(len(referral_cells)):
                    lam[referral_cells[g]] += wom * segment_shares[g]
            new[:] = 0
            if market > 0.0:
                total = lam.sum()
                if total > 0.0 and unaware > 0.0:
                    p_in = -math.expm1(-total / market * dt)
                    if stochastic:
                        n_in = binomial(int(math.floor(unaware)), p_in, substream(here, _POOL, 0))
                        rest, rest_lam = n_in, total
                        last = -1  # the last cell with arrivals takes what is left
                        for k in range(n_cells):
                            if lam[k] > 0.0:
                                last = k
                        for k in range(n_cells):
                            if rest == 0:
                                break
                            if lam[k] <= 0.0:
                                continue
                            share = lam[k] / rest_lam
                            x = (
                                rest
                                if share >= 1.0 or k == last
                                else binomial(int(rest), share, substream(here, _SPLIT, k))
                            )
                            new[k] = x
                            rest -= x
                            rest_lam -= lam[k]
                        unaware -= n_in
                    else:
                        n_f = unaware * p_in
                        for k in range(n_cells):
                            new[k] = n_f * lam[k] / total
                        unaware -= n_f
            else:
                for k in range(n_cells):
                    if lam[k] > 0.0:
                        if stochastic:
                            new[k] = poisson(lam[k] * dt, substream(here, _ARRIVALS, k))
                        else:
                            new[k] = lam[k] * dt
            # 2. moves: conditional binomials along each compartment's slots
            nxt[:] = 0
            for c in range(n_comp):
                n = state[c]
                if n == 0:
                    continue
                rest = n
                rest_p = 1.0
                for j in range(m):
                    p = probs[pr, ps, c, j]
                    d = dest[c, j]
                    if p <= 0.0 or d < 0:
                        continue
                    if stochastic:
                        if rest == 0:
                            break
                        x = (
                            rest
                            if p >= rest_p
                            else binomial(rest, p / rest_p, substream(here, _MOVES, c * m + j))
                        )
                        rest -= x
                        rest_p -= p
                    else:
                        x = n * p
                    nxt[d] += x
                    e = slot_edge[c, j]
                    if e >= 0:
                        flows[r, t, e] += x
                        entries[r, t, stage_of[d], cell_of[d]] += x
                nxt[c] += rest if stochastic else n * probs[pr, ps, c, m]
            # 3. arrivals join their entry compartment
            for k in range(n_cells):
                if new[k] != 0:
                    a = arrival_comp[k]
                    nxt[a] += new[k]
                    arrivals[r, t, k] += new[k]
                    entries[r, t, stage_of[a], k] += new[k]
            state, nxt = nxt, state
            if (step + 1) % steps_per_period == 0:
                for c in range(n_comp):
                    occupancy[r, t, stage_of[c]] += state[c]
