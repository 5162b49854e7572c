"""The step loop every population engine runs, compiled with numba.

One function, :func:`simulate`, runs replicates ``r0..r1`` of a compiled model through
every step and adds their period totals into output arrays. With ``stochastic`` it
draws whole numbers of people from counter-based sub-streams
(:mod:`funnelsim.engines._random`); without, it moves expected numbers. Arrays are
float64 either way (whole numbers are exact below 2**53), so one compiled signature
serves both engines. Each step:

1. arrivals by cell from the state at the start of the step (word of mouth counts the
   referrers present then): Poisson per cell, or with a finite market one Binomial from
   the unaware pool split between cells by conditional binomials;
2. each compartment's people move along its event slots by conditional binomials
   (a multinomial, the last slot "no event" taking the rest);
3. the arrivals join their entry compartment.

Sub-streams (lane, index) within (replicate, step): moves ``(0, c·m + j)`` for slot j
of compartment c, Poisson arrivals ``(1, k)``, the unaware-pool draw ``(2, 0)`` and its
split ``(3, k)``. A change to one slot's probability therefore leaves every draw of
every other compartment, cell, step and replicate as it was.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from funnelsim.engines._random import binomial, poisson, step_stream, substream

__all__ = ["simulate"]

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

    ``probs (R | 1, steps | 1, C, m + 1)`` and ``external (R | 1, steps | 1, K)`` may
    carry one set of parameters per replicate. ``market`` ≤ 0: no finite market.
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
        state[:] = initial
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
                        for k in range(n_cells):
                            if rest == 0:
                                break
                            if lam[k] <= 0.0:
                                continue
                            share = lam[k] / rest_lam
                            x = (
                                rest
                                if share >= 1.0
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
