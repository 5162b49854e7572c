"""Deterministic mean of the count engine: ``m_{t+1} = m_t P_t + a_t``.

For linear dynamics (no finite-market word of mouth) the replicate mean of
:class:`~funnelsim.engines.counts.CountEngine` equals this exactly; with word of mouth
they agree to O(1/population). Use it for optimisation, fitting aggregate data and
quick looks. It runs the count engine's compiled step loop, moving expected numbers.
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun, simulate_population

__all__ = ["ExpectedEngine"]


class ExpectedEngine:
    """Expected occupancy and flows: a single replicate whatever is asked, or one per
    set of rates when the model carries a replicate axis (posterior draws)."""

    name = "expected"
    stochastic = False
    progress_unit = "replicate"

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))

    def run(
        self,
        model: CompiledModel,
        replicates: int = 1,
        seed: int | None = None,
        progress: ProgressCallback | None = None,
        stream: int = 0,
    ) -> RawRun:
        """The expected run of ``model`` (``seed`` and ``stream`` are ignored)."""
        keys = np.zeros((model.n_parameter_sets, 2), dtype=np.uint64)
        raw = simulate_population(model, False, keys, self.workers)
        if progress is not None:
            progress(replicates)
        return raw
