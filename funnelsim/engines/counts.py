"""Exact discrete-time population engine (DESIGN.md §2).

Each step, every compartment makes one multinomial draw of who stays and who moves
along each of its edges (competing risks); arrivals are Poisson per arrival cell, or,
with a finite market, one Binomial draw from the unaware pool split multinomially
between cells. The cost is O(steps · replicates · edges), independent of how many
people are in the funnel; the step loop is compiled (numba), so the cost is that of
the random draws themselves.

Randomness: replicate r has a key from ``SeedSequence(seed).spawn``; every event slot
of every compartment, at every step, draws from its own counter-based sub-stream of
that key (:mod:`funnelsim.engines._kernels`), and so does each arrival cell. So
replicate r of every variant of a scenario sees the same random numbers in every
place the variants do not differ (common random numbers per event slot), and results
do not depend on how many replicates, plans or workers there are.
"""

from __future__ import annotations

import numpy as np

from funnelsim.dynamics import CompiledModel
from funnelsim.engines.base import ProgressCallback, RawRun, simulate_population

__all__ = ["CountEngine", "replicate_keys"]


def replicate_keys(seed: int | None, replicates: int, stream: int = 0) -> np.ndarray:
    """``(R, 2)`` uint64 keys, one per replicate, from ``SeedSequence(seed).spawn``.

    ``stream`` > 0 gives an independent family of streams (used to compare common
    random numbers with independent ones).
    """
    root = np.random.SeedSequence(seed, spawn_key=(stream,) if stream else ())
    return np.array(
        [child.generate_state(2, np.uint64) for child in root.spawn(replicates)], dtype=np.uint64
    ).reshape(replicates, 2)


class CountEngine:
    """Stochastic population engine with integer counts (the default engine).

    ``workers`` threads share the replicates (the compiled loop releases the GIL);
    results are identical for any number of workers.
    """

    name = "counts"
    stochastic = True
    progress_unit = "replicate"

    def __init__(self, workers: int = 1) -> None:
        self.workers = max(1, int(workers))

    def run(
        self,
        model: CompiledModel,
        replicates: int,
        seed: int | None,
        progress: ProgressCallback | None = None,
        stream: int = 0,
    ) -> RawRun:
        """Simulate ``replicates`` replicates of ``model``; replicate r uses key r of
        ``seed`` (family ``stream``) and, when the model carries one set of rates per
        replicate, set r."""
        keys = replicate_keys(seed, replicates, stream)
        return simulate_population(model, True, keys, self.workers, progress)
