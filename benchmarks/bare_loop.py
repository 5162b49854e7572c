"""A bare vectorised numpy loop making the count engine's draws, for side-by-side timing.

:func:`bare_loop` runs a :class:`~funnelsim.dynamics.CompiledModel` the way a
hand-written numpy simulation would: per step, one ``Generator.multinomial`` call for
every replicate and compartment at once (pvals broadcast), Poisson arrivals per cell
(or, with a finite market, a Binomial from the unaware pool split by a multinomial,
with word of mouth from the current state), and a float matrix product to send the
moves to their destinations. It keeps only the occupancy at period ends. It is what
the count engine's cost is measured against ("engine / bare").
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel

__all__ = ["bare_loop"]


def bare_loop(model: CompiledModel, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Occupancy by compartment at each period end, ``(R, T, C)``, from numpy draws."""
    c_n, m = model.dest.shape
    r = replicates
    route = np.zeros((c_n * m, c_n))  # slot → destination compartment
    slots = np.nonzero(model.dest.ravel() >= 0)[0]
    route[slots, model.dest.ravel()[slots]] = 1.0
    state = np.tile(np.rint(model.initial).astype(np.int64), (r, 1))
    unaware = np.full(r, model.unaware_at_start())
    out = np.empty((r, model.n_periods, c_n), dtype=np.int64)
    external = model.external_rate
    for step in range(model.n_steps):
        lam = np.tile(external[step if len(external) > 1 else 0], (r, 1))
        if model.referral_rate is not None:
            assert model.referral_cells is not None and model.segment_shares is not None
            wom = state @ model.referral_rate
            lam[:, model.referral_cells] += wom[:, None] * model.segment_shares[None, :]
        if model.market_size is None:
            new = rng.poisson(lam * model.dt)
        else:
            total = lam.sum(axis=1)
            n_in = rng.binomial(
                np.maximum(unaware, 0).astype(np.int64),
                -np.expm1(-total / model.market_size * model.dt),
            )
            new = rng.multinomial(n_in, lam / total[:, None])
            unaware -= n_in
        draws = rng.multinomial(state, model.probs_at(step))  # (R, C, m + 1)
        moved = draws[:, :, :-1].reshape(r, c_n * m).astype(float)
        state = draws[:, :, -1] + np.rint(moved @ route).astype(np.int64)
        state[:, model.arrival_comp] += new
        if (step + 1) % model.steps_per_period == 0:
            out[:, step // model.steps_per_period] = state
    return out
