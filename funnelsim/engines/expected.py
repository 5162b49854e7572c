"""Deterministic mean of the count engine: ``m_{t+1} = m_t P_t + a_t``.

For linear dynamics (no finite-market word of mouth) the replicate mean of
:class:`~funnelsim.engines.counts.CountEngine` equals this exactly; with word of mouth
they agree to O(1/population). Use it for optimisation, fitting aggregate data and
quick looks.
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun, simulate_replicate, stack_replicates

__all__ = ["ExpectedEngine"]


class ExpectedEngine:
    """Expected occupancy and flows; returns a single replicate whatever is asked."""

    name = "expected"
    stochastic = False
    progress_unit = "replicate"

    def run(
        self,
        model: CompiledModel,
        replicates: int = 1,
        seed: int | None = None,
        progress: ProgressCallback | None = None,
        stream: int = 0,
    ) -> RawRun:
        dt, market = model.dt, model.market_size

        def arrivals(step: int, lam: np.ndarray, unaware: float) -> np.ndarray:
            if market is None:
                return lam * dt
            total = lam.sum()
            if total <= 0 or unaware <= 0:
                return np.zeros_like(lam)
            return unaware * -np.expm1(-total / market * dt) * lam / total

        def moves(step: int, state: np.ndarray, probs: np.ndarray):
            return state[:, None] * probs[:, :-1], state * probs[:, -1]

        initial = model.initial.astype(float)
        part = simulate_replicate(model, initial.copy(), arrivals, moves)
        if progress is not None:
            progress(replicates)
        return stack_replicates(model, [part], initial)
