"""Deterministic mean of the count engine: ``m_{t+1} = m_t P_t + a_t``.

For linear dynamics the replicate mean of :class:`~funnelsim.engines.counts.CountEngine`
converges to this exactly; use it for optimisation, fitting aggregate data and quick looks.
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun, aggregate_moves

__all__ = ["ExpectedEngine"]


class ExpectedEngine:
    """Expected occupancy and flows; returns a single replicate whatever is asked."""

    name = "expected"
    stochastic = False

    def run(
        self,
        model: CompiledModel,
        replicates: int = 1,
        seed: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> RawRun:
        c, m = model.dest.shape
        dest_matrix = model.slot_dest_matrix()
        stage_matrix = model.stage_matrix()
        state = model.initial.astype(float)
        moves = np.zeros((model.n_steps, c, m))
        arrivals = np.zeros((model.n_steps, len(model.channels)))
        ends = np.zeros((model.n_periods, c))
        for step in range(model.n_steps):
            probs = model.probs_at(step)
            move = state[:, None] * probs[:, :-1]
            arrivals[step] = model.arrivals_at(step)
            state = state * probs[:, -1] + move.reshape(-1) @ dest_matrix
            np.add.at(state, model.arrival_comp, arrivals[step])
            moves[step] = move
            if (step + 1) % model.steps_per_period == 0:
                ends[step // model.steps_per_period] = state
        if progress is not None:
            progress(replicates)
        per_period_arrivals = arrivals.reshape(model.n_periods, model.steps_per_period, -1).sum(1)
        return RawRun(
            initial=(model.initial @ stage_matrix)[None],
            occupancy=(ends @ stage_matrix)[None],
            flows=aggregate_moves(model, moves)[None],
            arrivals=per_period_arrivals[None],
        )
